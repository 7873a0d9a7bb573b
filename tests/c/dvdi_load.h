/*
 * The C test hosts' view of libdvdi_ffi.so, loaded as the Mesos module's host loads it: dlopen
 * (RTLD_NOW, its own copy), every function of dvdi.h looked up by name. A missing library or
 * symbol ends the program with status 2. Included by each C test host in tests/c.
 */
#ifndef DVDI_TEST_LOAD_H
#define DVDI_TEST_LOAD_H

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "dvdi.h"

static struct {
    uint32_t (*abi_version)(void);
    void (*set_logger)(dvdi_log_fn, void *);
    dvdi_status (*isolator_new)(const char *, dvdi_isolator **, char **);
    void (*isolator_free)(dvdi_isolator *);
    dvdi_status (*recover)(const dvdi_isolator *, const char *, const char *, char **, char **);
    dvdi_status (*prepare)(const dvdi_isolator *, const char *, const char *, char **, char **);
    dvdi_status (*cleanup)(const dvdi_isolator *, const char *, char **);
    dvdi_status (*metrics)(const dvdi_isolator *, dvdi_metrics *, size_t, char **);
    void (*string_free)(char *);
    dvdi_status (*selftest_panic)(char **);
} api;

static void *sym(void *lib, const char *name) {
    void *p = dlsym(lib, name);
    if (!p) {
        fprintf(stderr, "missing symbol %s: %s\n", name, dlerror());
        exit(2);
    }
    return p;
}

static void load(const char *path) {
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
        exit(2);
    }
    *(void **)&api.abi_version = sym(lib, "dvdi_abi_version");
    *(void **)&api.set_logger = sym(lib, "dvdi_set_logger");
    *(void **)&api.isolator_new = sym(lib, "dvdi_isolator_new");
    *(void **)&api.isolator_free = sym(lib, "dvdi_isolator_free");
    *(void **)&api.recover = sym(lib, "dvdi_isolator_recover");
    *(void **)&api.prepare = sym(lib, "dvdi_isolator_prepare");
    *(void **)&api.cleanup = sym(lib, "dvdi_isolator_cleanup");
    *(void **)&api.metrics = sym(lib, "dvdi_isolator_metrics");
    *(void **)&api.string_free = sym(lib, "dvdi_string_free");
    *(void **)&api.selftest_panic = sym(lib, "dvdi_selftest_panic");
}

#endif
