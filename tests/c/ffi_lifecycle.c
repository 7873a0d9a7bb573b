/*
 * Drives the dvdi C ABI the way the Mesos module does: dlopen the real libdvdi_ffi.so, create an
 * isolator, recover, prepare an Elasticsearch-style container (two local block volumes, an
 * absolute and a sandbox-relative container path) from protobuf-JSON, carry out the returned
 * launch info in a child (new mount namespace, rslave, binds) that writes to its volumes,
 * "restart the agent" (a second handle recovers from the same checkpoint dir), clean up.
 * Bad input of every kind must come back as a status code and a message, never a crash.
 *
 * usage: ffi_lifecycle LIBDVDI_FFI_SO WORKDIR     (root; WORKDIR is an empty directory)
 * Built by tests/tests/c_abi.rs with -Wall -Wextra -Werror -fsanitize=address,undefined.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dvdi.h"
#include "dvdi_load.h"

static int failures;
static int log_records;

#define CHECK(cond, ...)                                                                \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);             \
            fprintf(stderr, __VA_ARGS__);                                               \
            fprintf(stderr, "\n");                                                      \
            failures++;                                                                 \
        }                                                                               \
    } while (0)

/* The handle's figures, as a host reads them: its own sizeof, the struct zeroed first. */
static dvdi_metrics metrics_of(const dvdi_isolator *h) {
    dvdi_metrics m;
    memset(&m, 0, sizeof m);
    char *err = NULL;
    dvdi_status st = api.metrics(h, &m, sizeof m, &err);
    CHECK(st == DVDI_OK && m.size == sizeof m && m.version == DVDI_METRICS_VERSION,
          "metrics: %d %s (size %u, version %u)", (int)st, err ? err : "", m.size, m.version);
    api.string_free(err);
    return m;
}

static void on_log(void *context, dvdi_log_level level, const char *message) {
    (void)context;
    log_records++;
    fprintf(stderr, "[dvdi log %d] %s\n", (int)level, message);
}

static char *fmt(const char *format, ...) {
    va_list ap;
    char *out = NULL;
    va_start(ap, format);
    if (vasprintf(&out, format, ap) < 0) {
        exit(2);
    }
    va_end(ap);
    return out;
}

/* Whether `path` is a mount point in this process's mount namespace. */
static int is_mountpoint(const char *path) {
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[4096];
    int found = 0;
    if (!f) {
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        char mp[4096];
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && strcmp(mp, path) == 0) {
            found = 1;
        }
    }
    fclose(f);
    return found;
}

/* Expects a failure with `want` and a message containing `needle` in `*errp` (read after the
 * call, whatever the argument evaluation order); frees the message and resets `*errp`. */
static void expect_error(dvdi_status got, dvdi_status want, char **errp, const char *needle,
                         const char *what) {
    char *err = *errp;
    CHECK(got == want, "%s: status %d, want %d (%s)", what, (int)got, (int)want,
          err ? err : "no message");
    CHECK(err != NULL && err[0] != '\0', "%s: no error message", what);
    if (err && needle) {
        CHECK(strstr(err, needle) != NULL, "%s: message %s lacks %s", what, err, needle);
    }
    api.string_free(err);
    *errp = NULL;
}

/* The mounts of a launch info written by this library: {"clone_namespaces":[..],"mounts":
 * [{"flags":N,"source":"..","target":".."},...]} (serde_json, keys sorted). Paths here have
 * no characters that JSON escapes. */
struct mount_entry {
    char source[1024];
    char target[1024];
    unsigned long flags;
};

static int parse_mounts(const char *json, struct mount_entry *out, int max) {
    int n = 0;
    const char *p = strstr(json, "\"mounts\":[");
    while (p && n < max) {
        const char *f = strstr(p, "\"flags\":");
        const char *s = strstr(p, "\"source\":\"");
        const char *t = strstr(p, "\"target\":\"");
        if (!f || !s || !t) {
            break;
        }
        out[n].flags = strtoul(f + 8, NULL, 10);
        sscanf(s + 10, "%1023[^\"]", out[n].source);
        sscanf(t + 10, "%1023[^\"]", out[n].target);
        n++;
        p = strchr(t + 10, '}');
    }
    return n;
}

/* In a child: a private mount namespace, / made rslave, the binds applied in order, then a
 * file written through each read-write target. Returns the child's exit status. */
static int run_container(struct mount_entry *m, int n, const char *payload) {
    pid_t pid = fork();
    if (pid == 0) {
        if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) != 0) {
            perror("namespace");
            _exit(10);
        }
        for (int i = 0; i < n; i++) {
            const char *src = (m[i].flags & MS_REMOUNT) ? NULL : m[i].source;
            if (mount(src, m[i].target, NULL, m[i].flags, NULL) != 0) {
                perror(m[i].target);
                _exit(11);
            }
        }
        for (int i = 0; i < n; i++) {
            char *file = fmt("%s/hello.txt", m[i].target);
            FILE *f = fopen(file, "w");
            if (!f || fputs(payload, f) < 0 || fclose(f) != 0) {
                perror(file);
                _exit(12);
            }
            free(file);
        }
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s LIB WORKDIR\n", argv[0]);
        return 2;
    }
    load(argv[1]);
    const char *work = argv[2];
    char *err = NULL;
    dvdi_isolator *sentinel = (dvdi_isolator *)&failures; /* must stay untouched on failure */
    dvdi_isolator *h = sentinel;

    CHECK(api.abi_version() == DVDI_ABI_VERSION, "abi %u vs header %d", api.abi_version(),
          DVDI_ABI_VERSION);
    api.set_logger(on_log, NULL);

    /* Bad arguments: a status and a message each, out-params untouched. */
    expect_error(api.isolator_new(NULL, &h, &err), DVDI_ERR_NULL_ARGUMENT, &err, "config_json",
                 "NULL config");
    expect_error(api.isolator_new("{}", NULL, &err), DVDI_ERR_NULL_ARGUMENT, &err, "out",
                 "NULL out");
    expect_error(api.isolator_new("{\"checkpoint_dir\": \"\xff\xfe\"}", &h, &err),
                 DVDI_ERR_INVALID_UTF8, &err, "UTF-8", "invalid UTF-8");
    expect_error(api.isolator_new("{not json", &h, &err), DVDI_ERR_INVALID_JSON, &err, "JSON",
                 "malformed JSON");
    expect_error(api.isolator_new("{\"bogus_key\": \"1\", \"other\": 2}", &h, &err),
                 DVDI_ERR_CONFIG, &err, "bogus_key", "unknown key");
    expect_error(api.isolator_new("{\"timeout\": \"soon\"}", &h, &err), DVDI_ERR_CONFIG, &err,
                 "timeout", "bad value");
    CHECK(h == sentinel, "out-param written on failure");
    CHECK(api.isolator_new("{bad", &h, NULL) == DVDI_ERR_INVALID_JSON, "err may be NULL");
    CHECK(h == sentinel, "out-param written on failure");
    expect_error(api.selftest_panic(&err), DVDI_ERR_PANIC, &err, "selftest_panic", "panic");
    CHECK(api.selftest_panic(NULL) == DVDI_ERR_PANIC, "panic without err pointer");
    expect_error(api.cleanup(NULL, "{\"value\":\"x\"}", &err), DVDI_ERR_NULL_ARGUMENT, &err,
                 "isolator", "NULL handle");
    api.isolator_free(NULL);
    api.string_free(NULL);

    /* A real isolator on temp dirs, with the local driver. */
    char *config = fmt("{\"checkpoint_dir\":\"%s/ckpt\",\"local_root\":\"%s/volumes\","
                       "\"plugin_dirs\":[\"%s/plugins\"],\"default_driver\":\"local\","
                       "\"work_dir\":\"/var/lib/mesos\",\"timeout\":30}",
                       work, work, work);
    dvdi_status st = api.isolator_new(config, &h, &err);
    CHECK(st == DVDI_OK, "isolator_new: %s", err ? err : "?");
    if (st != DVDI_OK) {
        return 1;
    }
    char *report = NULL;
    st = api.recover(h, "[]", "[]", &report, &err);
    CHECK(st == DVDI_OK && report && strstr(report, "\"kept_containers\":0"), "recover: %s",
          st == DVDI_OK ? report : err);
    api.string_free(report);

    char *sandbox = fmt("%s/sandbox", work);
    char *abs_target = fmt("/tmp/dvdi-c-test-%d/config", (int)getpid());
    mkdir(sandbox, 0755);
    const char *id = "{\"value\":\"es-node-1\"}";
    char *container = fmt(
        "{\"executor_info\":{\"executor_id\":{\"value\":\"es\"},\"command\":{\"shell\":true,"
        "\"value\":\"java -jar elasticsearch.jar\",\"environment\":{\"variables\":["
        "{\"name\":\"DVDI_VOLUME_NAME\",\"type\":\"VALUE\",\"value\":\"es1config\"},"
        "{\"name\":\"DVDI_VOLUME_OPTS\",\"value\":\"size=32M\"},"
        "{\"name\":\"DVDI_VOLUME_CONTAINERPATH\",\"value\":\"%s\"},"
        "{\"name\":\"DVDI_VOLUME_NAME1\",\"value\":\"es1data\"},"
        "{\"name\":\"DVDI_VOLUME_DRIVER1\",\"value\":\"local\"},"
        "{\"name\":\"DVDI_VOLUME_OPTS1\",\"value\":\"size=32M,fstype=ext4\"},"
        "{\"name\":\"DVDI_VOLUME_CONTAINERPATH1\",\"value\":\"data\"}]}}},"
        "\"command_info\":{\"shell\":true},\"directory\":\"%s\",\"user\":\"root\","
        "\"container_class\":\"DEFAULT\"}",
        abs_target, sandbox);

    /* Bad container input. */
    char *launch = (char *)sentinel;
    expect_error(api.prepare(h, "{\"value\":", container, &launch, &err), DVDI_ERR_INVALID_JSON, &err, "container_id_json", "malformed id");
    expect_error(api.prepare(h, "{\"value\":\"a/b\"}", container, &launch, &err),
                 DVDI_ERR_INVALID_INPUT, &err, "a/b", "bad id");
    expect_error(api.prepare(h, "{\"value\":\"c2\"}",
                             "{\"directory\":\"/tmp\",\"command_info\":{\"environment\":{"
                             "\"variables\":[{\"name\":\"DVDI_VOLUME_FOO\",\"value\":\"x\"}]}}}",
                             &launch, &err),
                 DVDI_ERR_INVALID_INPUT, &err, "DVDI_VOLUME_FOO", "unknown variable");
    expect_error(api.prepare(h, id, "[1,2]", &launch, &err), DVDI_ERR_INVALID_JSON, &err,
                 "container_config_json", "wrong shape");
    CHECK(launch == (char *)sentinel, "launch out-param written on failure");

    /* No DVDI variables: no launch info. */
    launch = (char *)sentinel;
    st = api.prepare(h, "{\"value\":\"plain\"}", "{\"directory\":\"/tmp\"}", &launch, &err);
    CHECK(st == DVDI_OK && launch == NULL, "plain container: %d %p", (int)st, (void *)launch);

    /* The Elasticsearch node. */
    launch = NULL;
    st = api.prepare(h, id, container, &launch, &err);
    CHECK(st == DVDI_OK && launch != NULL, "prepare: %s", err ? err : "no launch info");
    if (st != DVDI_OK || !launch) {
        return 1;
    }
    fprintf(stderr, "launch info: %s\n", launch);
    /* The unknown variable was a failed prepare; bad JSON or ids never reached it, and the
     * plain container asked for no volume. */
    dvdi_metrics m = metrics_of(h);
    CHECK(m.prepares == 2 && m.prepare_failures == 1 && m.prepare_time.count == 2,
          "prepares %llu, failures %llu, timed %llu", (unsigned long long)m.prepares,
          (unsigned long long)m.prepare_failures, (unsigned long long)m.prepare_time.count);
    CHECK(m.volumes_known == 1 && m.volumes_mounted == 2 && m.unmounts_pending_retry == 0,
          "volumes mounted %llu, pending %llu", (unsigned long long)m.volumes_mounted,
          (unsigned long long)m.unmounts_pending_retry);
    expect_error(api.metrics(NULL, &m, sizeof m, &err), DVDI_ERR_NULL_ARGUMENT, &err,
                 "isolator", "metrics of NULL");
    expect_error(api.metrics(h, NULL, sizeof m, &err), DVDI_ERR_NULL_ARGUMENT, &err, "out",
                 "metrics into NULL");
    m.prepares = 12345;
    expect_error(api.metrics(h, &m, DVDI_METRICS_SIZE_V1 - 1, &err), DVDI_ERR_BUFFER_SIZE,
                 &err, "out_size", "metrics into too small a struct");
    CHECK(m.prepares == 12345, "metrics written on failure");
    CHECK(strstr(launch, "\"clone_namespaces\":[131072]") != NULL, "no CLONE_NEWNS: %s", launch);
    struct mount_entry mounts[8];
    int n = parse_mounts(launch, mounts, 8);
    CHECK(n == 2, "expected 2 binds, got %d", n);
    for (int i = 0; i < n; i++) {
        CHECK(is_mountpoint(mounts[i].source) == 1, "volume %s is not mounted", mounts[i].source);
    }
    CHECK(run_container(mounts, n, "written inside the container\n") == 0, "container failed");
    for (int i = 0; i < n; i++) {
        /* The bind stayed inside the child's namespace; the data is on the volume. */
        CHECK(is_mountpoint(mounts[i].target) == 0, "bind leaked to the host: %s",
              mounts[i].target);
        char *file = fmt("%s/hello.txt", mounts[i].source);
        CHECK(access(file, R_OK) == 0, "%s missing on the volume", file);
        free(file);
    }
    api.string_free(launch);

    /* The agent "restarts": a second handle recovers the running container and keeps it. */
    api.isolator_free(h);
    dvdi_isolator *h2 = NULL;
    st = api.isolator_new(config, &h2, &err);
    CHECK(st == DVDI_OK, "second isolator_new: %s", err ? err : "?");
    if (st != DVDI_OK) {
        return 1;
    }
    char *states = fmt("[{\"container_id\":%s,\"pid\":%d,\"directory\":\"%s\"}]", id,
                       (int)getpid(), sandbox);
    report = NULL;
    st = api.recover(h2, states, "[]", &report, &err);
    CHECK(st == DVDI_OK && report && strstr(report, "\"kept_containers\":1"),
          "recover with a running container: %s", st == DVDI_OK ? report : err);
    api.string_free(report);
    for (int i = 0; i < n; i++) {
        CHECK(is_mountpoint(mounts[i].source) == 1, "recover unmounted %s under a live task",
              mounts[i].source);
    }
    m = metrics_of(h2);
    CHECK(m.prepares == 0 && m.recovers == 1 && m.volumes_mounted == 2,
          "after restart: prepares %llu, recovers %llu, mounted %llu",
          (unsigned long long)m.prepares, (unsigned long long)m.recovers,
          (unsigned long long)m.volumes_mounted);
    st = api.cleanup(h2, id, &err);
    CHECK(st == DVDI_OK, "cleanup: %s", err ? err : "?");
    m = metrics_of(h2);
    CHECK(m.cleanups == 1 && m.cleanup_failures == 0 && m.cleanup_time.count == 1 &&
              m.volumes_mounted == 0,
          "after cleanup: cleanups %llu, mounted %llu", (unsigned long long)m.cleanups,
          (unsigned long long)m.volumes_mounted);
    for (int i = 0; i < n; i++) {
        CHECK(is_mountpoint(mounts[i].source) == 0, "%s still mounted after cleanup",
              mounts[i].source);
    }
    st = api.cleanup(h2, "{\"value\":\"never-prepared\"}", &err);
    CHECK(st == DVDI_OK, "cleanup of an unknown container: %s", err ? err : "?");

    /* A replacement node gets the same volumes back, with the data. */
    launch = NULL;
    st = api.prepare(h2, "{\"value\":\"es-node-1-replacement\"}", container, &launch, &err);
    CHECK(st == DVDI_OK && launch, "prepare replacement: %s", err ? err : "?");
    n = parse_mounts(launch ? launch : "", mounts, 8);
    for (int i = 0; i < n; i++) {
        char *file = fmt("%s/hello.txt", mounts[i].source);
        CHECK(access(file, R_OK) == 0, "data lost: %s", file);
        free(file);
    }
    api.string_free(launch);
    st = api.cleanup(h2, "{\"value\":\"es-node-1-replacement\"}", &err);
    CHECK(st == DVDI_OK, "cleanup replacement: %s", err ? err : "?");
    api.isolator_free(h2);

    CHECK(log_records > 0, "the log callback never ran");
    free(config);
    free(container);
    free(states);
    free(sandbox);
    free(abs_target);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("ffi_lifecycle: all checks passed\n");
    return 0;
}
