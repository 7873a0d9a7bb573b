/*
 * Replays agent calls against the real libdvdi_ffi.so, as the Mesos module makes them: dlopen,
 * dvdi_isolator_new with a configuration file, then each call in turn with the protobuf-JSON
 * read from files (the captured Mesos 1.12 fixtures, written out by the Rust test). Prints one
 * line per call on stdout, and nothing else:
 *
 *   prepare ok <launch info JSON, or NULL>      prepare err <status> <message>
 *   cleanup ok                                  cleanup err <status> <message>
 *   recover ok <report JSON>                    recover err <status> <message>
 *
 * usage: ffi_replay LIBDVDI_FFI_SO CONFIG_FILE CALL...
 *   CALL: prepare ID_FILE CONFIG_FILE | cleanup ID_FILE | recover STATES_FILE ORPHANS_FILE
 * Built by tests/tests/c_abi_replay.rs with -Wall -Wextra -Werror -fsanitize=address,undefined.
 * Exit status: 0 when every call could be made (whatever it returned), 2 on a usage or load
 * error.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dvdi.h"
#include "dvdi_load.h"

/* The whole file as a NUL-terminated string (the caller frees it). */
static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            cap *= 2;
            char *bigger = realloc(buf, cap);
            if (!bigger) {
                free(buf);
            }
            buf = bigger;
        }
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "out of memory reading %s\n", path);
        exit(2);
    }
    buf[len] = '\0';
    return buf;
}

/* Prints "<what> ok <out>" or "<what> err <status> <err>" and frees both strings. */
static void report(const char *what, dvdi_status status, char *out, char *err) {
    if (status == DVDI_OK) {
        printf("%s ok%s%s\n", what, out ? " " : "", out ? out : "");
    } else {
        printf("%s err %d %s\n", what, (int)status, err ? err : "(no message)");
    }
    api.string_free(out);
    api.string_free(err);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s LIB CONFIG_FILE CALL...\n", argv[0]);
        return 2;
    }
    load(argv[1]);
    char *config = slurp(argv[2]);
    dvdi_isolator *iso = NULL;
    char *err = NULL;
    dvdi_status status = api.isolator_new(config, &iso, &err);
    free(config);
    if (status != DVDI_OK) {
        fprintf(stderr, "dvdi_isolator_new: %d %s\n", (int)status, err ? err : "");
        api.string_free(err);
        return 2;
    }
    for (int i = 3; i < argc;) {
        const char *call = argv[i];
        char *out = NULL;
        err = NULL;
        if (strcmp(call, "prepare") == 0 && i + 2 < argc) {
            char *id = slurp(argv[i + 1]), *cfg = slurp(argv[i + 2]);
            status = api.prepare(iso, id, cfg, &out, &err);
            free(id);
            free(cfg);
            i += 3;
        } else if (strcmp(call, "cleanup") == 0 && i + 1 < argc) {
            char *id = slurp(argv[i + 1]);
            status = api.cleanup(iso, id, &err);
            free(id);
            i += 2;
        } else if (strcmp(call, "recover") == 0 && i + 2 < argc) {
            char *states = slurp(argv[i + 1]), *orphans = slurp(argv[i + 2]);
            status = api.recover(iso, states, orphans, &out, &err);
            free(states);
            free(orphans);
            i += 3;
        } else {
            fprintf(stderr, "bad call at argument %d: %s\n", i, call);
            api.isolator_free(iso);
            return 2;
        }
        report(call, status, out, err);
        fflush(stdout);
    }
    api.isolator_free(iso);
    return 0;
}
