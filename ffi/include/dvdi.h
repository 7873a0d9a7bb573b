/*
 * dvdi.h -- the C ABI of dvdi-rs (libdvdi_ffi.so).
 *
 * A Mesos isolator module (packaging/mesos-module) loads this library and forwards the
 * isolator calls to it. Container data crosses as JSON in Mesos' own protobuf-JSON mapping
 * (stout's JSON::protobuf() produces it, protobuf::parse<T>() reads it back), so the module
 * stays small and independent of the Mesos version.
 *
 * Rules of every function:
 *  - it never crashes its host: NULL arguments, invalid UTF-8, malformed JSON and internal
 *    panics all come back as a status code;
 *  - out-parameters are written only when the function returns DVDI_OK; on failure, `*err`
 *    (when `err` is not NULL) receives a message that the caller frees with dvdi_string_free;
 *  - strings returned by the library are NUL-terminated UTF-8 and freed with dvdi_string_free;
 *  - a handle may be used from many threads at once; calls may block (they make plugin calls
 *    with deadlines), so a host must not call them on a thread that must stay responsive.
 */
#ifndef DVDI_H
#define DVDI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a signature or a JSON shape below changes incompatibly. Additions (a new
 * function, a new status, new fields at the end of dvdi_metrics) do not bump it: a host that
 * must also run with an older libdvdi_ffi.so of the same version looks a newer function up
 * with dlsym() before calling it. (The Mesos module calls them directly: it is installed with
 * its library, and the agent loads modules with RTLD_NOW, so a module paired with an older
 * library fails to load with an error that names the missing function.) */
#define DVDI_ABI_VERSION 1

typedef enum dvdi_status {
    DVDI_OK = 0,
    DVDI_ERR_NULL_ARGUMENT = 1,   /* a required pointer argument was NULL */
    DVDI_ERR_INVALID_UTF8 = 2,    /* a string argument was not UTF-8 */
    DVDI_ERR_INVALID_JSON = 3,    /* a JSON argument did not parse or had the wrong shape */
    DVDI_ERR_CONFIG = 4,          /* bad configuration (unknown key, bad value) */
    DVDI_ERR_INVALID_INPUT = 5,   /* the container's DVDI_VOLUME_* variables, DOCKER_VOLUMEs or paths were refused */
    DVDI_ERR_VOLUME = 6,          /* a driver or plugin call failed (mount, unmount, ...) */
    DVDI_ERR_STATE = 7,           /* the checkpoint could not be read or written */
    DVDI_ERR_PANIC = 8,           /* a bug inside the library, caught at the boundary */
    DVDI_ERR_BUFFER_SIZE = 9      /* an out-struct's size is below the smallest the library fills */
} dvdi_status;

/* A record's level. DVDI_LOG_DEBUG records come only from an isolator whose log_level is
 * "debug"; records below an isolator's log_level are never passed to the callback. */
typedef enum dvdi_log_level {
    DVDI_LOG_ERROR = 0,
    DVDI_LOG_WARNING = 1,
    DVDI_LOG_INFO = 2,
    DVDI_LOG_DEBUG = 3
} dvdi_log_level;

/* Opaque isolator handle. */
typedef struct dvdi_isolator dvdi_isolator;

/* Receives the library's log records; `message` is valid only during the call. The callback
 * must not call back into this library. */
typedef void (*dvdi_log_fn)(void *context, dvdi_log_level level, const char *message);

/* DVDI_ABI_VERSION of the library actually loaded. */
uint32_t dvdi_abi_version(void);

/* Installs (or, with fn == NULL, removes) the process-wide log callback. Without one, records
 * go to stderr. The callback may be called from any thread. */
void dvdi_set_logger(dvdi_log_fn fn, void *context);

/* Creates an isolator from a JSON object of settings, all optional, values as strings or as
 * their JSON types: checkpoint_dir, default_driver, plugin_dirs (colon-separated or array),
 * timeout, connect_timeout, create_timeout, mount_timeout, other_timeout (seconds),
 * max_reply_bytes (largest plugin reply read, bytes, at least 1024), local_root, local_max_size (largest new local block volume: bytes, or N with a K, M or G
 * suffix; a JSON number is bytes), csi_config_dir (directory of CSI plugin files NAME.json),
 * csi_client (path of the dvdi-csi program), allowed_drivers (comma-separated or array),
 * chown_volume_root (bool), local_device_options (bool), docker_volumes (bool: also serve
 * ContainerInfo's DOCKER_VOLUME volumes; default false), protected_host_dirs (host directories
 * an absolute container path of a container without an image may not cover: colon-separated
 * or array, "default" for the default list, "none" for no restriction), log_level ("error",
 * "warning", "info" or "debug": records below it are not passed to the log callback; default
 * "info"), work_dir (accepted for mesos-module-dvdi compatibility and ignored). Unknown keys are
 * an error that names them. packaging/README.md has the whole table. */
dvdi_status dvdi_isolator_new(const char *config_json, dvdi_isolator **out, char **err);

/* Frees a handle; NULL is ignored. */
void dvdi_isolator_free(dvdi_isolator *isolator);

/* recover(): `states_json` is a JSON array of mesos.slave.ContainerState, `orphans_json` a
 * JSON array of mesos.ContainerID. On success `*report_json` (if report_json is not NULL)
 * receives a JSON object describing what was kept and released. */
dvdi_status dvdi_isolator_recover(const dvdi_isolator *isolator, const char *states_json,
                                  const char *orphans_json, char **report_json, char **err);

/* prepare(): `container_id_json` is a mesos.ContainerID, `container_config_json` a
 * mesos.slave.ContainerConfig. On success `*launch_info_json` receives a
 * mesos.slave.ContainerLaunchInfo as JSON, or NULL when the container has no DVDI volumes
 * (the module then returns None to Mesos). */
dvdi_status dvdi_isolator_prepare(const dvdi_isolator *isolator, const char *container_id_json,
                                  const char *container_config_json, char **launch_info_json,
                                  char **err);

/* cleanup(): releases the container's volumes. Cleanup of an unknown container succeeds. */
dvdi_status dvdi_isolator_cleanup(const dvdi_isolator *isolator, const char *container_id_json,
                                  char **err);

/* The figures of one isolator handle, for a host's metrics (the Mesos module publishes them
 * in the agent's /metrics/snapshot under dvdi/; packaging/README.md lists the names).
 *
 * Durations are microseconds. A timer's count, total_us and last_us cover the handle's whole
 * life; window, min_us, max_us and the percentiles cover the latest `window` durations (at
 * most 1024). Percentiles are nearest-rank. Every field is 0 before its first event. */
typedef struct dvdi_timer_metrics {
    uint64_t count;     /* operations timed */
    uint64_t total_us;  /* sum of their durations */
    uint64_t last_us;   /* the latest one */
    uint64_t window;    /* durations min_us .. p99_us are computed over */
    uint64_t min_us;
    uint64_t max_us;
    uint64_t p50_us;
    uint64_t p90_us;
    uint64_t p95_us;
    uint64_t p99_us;
} dvdi_timer_metrics;

/* The layout of dvdi_metrics this header describes; fields are only ever added at its end. */
#define DVDI_METRICS_VERSION 1
/* sizeof(dvdi_metrics) of layout 1: the smallest `out_size` dvdi_isolator_metrics accepts. */
#define DVDI_METRICS_SIZE_V1 256

/* Counters only go up (for the life of the handle: a new handle, e.g. after an agent restart,
 * starts from 0); gauges are counted from the checkpoint when the call is made. */
typedef struct dvdi_metrics {
    uint32_t size;     /* written by the library: the bytes of this struct it filled; a field
                        * that ends beyond it was left as the caller had it */
    uint32_t version;  /* written by the library: the DVDI_METRICS_VERSION it was built with */
    uint64_t prepares;          /* prepares of containers that asked for volumes (DVDI_VOLUME_*
                                 * variables, or DOCKER_VOLUMEs when docker_volumes is on),
                                 * successful or not; containers without any are not counted */
    uint64_t prepare_failures;  /* of those, the ones that failed (and were rolled back) */
    uint64_t cleanups;          /* cleanups of containers that held volumes, and failed cleanups
                                 * of any container; cleanups of containers without volumes are
                                 * not counted */
    uint64_t cleanup_failures;  /* of those, the ones that failed (failed unmounts are remembered
                                 * for retry: see unmounts_pending_retry) */
    uint64_t recovers;          /* recover calls */
    uint64_t recover_failures;  /* of those, the ones that failed */
    uint64_t plugin_timeouts;   /* plugin calls (any endpoint) whose deadline passed, one per call;
                                 * a connection that could not be made within the connect window
                                 * is one too */
    uint64_t volumes_known;     /* 1 when the three gauges below were counted; 0 when the
                                 * checkpoint's volume records could not be listed (they are 0) */
    uint64_t volumes_mounted;   /* gauge: volumes the checkpoint records as mounted (one driver
                                 * Mount each, however many containers share it) */
    uint64_t unmounts_pending_retry; /* gauge: Unmounts that failed and wait for their retry (by
                                      * the next prepare of the volume or the next recover) */
    uint64_t unreadable_volume_records; /* gauge: volume records that could not be read, left out
                                         * of the two gauges above (recover moves them aside) */
    dvdi_timer_metrics prepare_time; /* the prepares counted above, failed ones included */
    dvdi_timer_metrics cleanup_time; /* the cleanups counted above, failed ones included */
} dvdi_metrics;

/* Fills `*out` with the handle's figures: the first min(out_size, the library's own size)
 * bytes, and out->size says how many that was. Pass out_size = sizeof(dvdi_metrics); zero the
 * struct first if it may be larger than what an older library fills. An out_size below
 * DVDI_METRICS_SIZE_V1 is DVDI_ERR_BUFFER_SIZE. Takes no lock and makes no plugin call: it
 * reads one small checkpoint file per volume that is mounted, held or waiting for a retry, so
 * it may be called from a thread that must stay responsive. A struct rather than JSON: a host
 * reads it once per published figure, with no allocation or parsing, and its layout is checked
 * by the compiler (dvdi_abi_check.h). */
dvdi_status dvdi_isolator_metrics(const dvdi_isolator *isolator, dvdi_metrics *out,
                                  size_t out_size, char **err);

/* Frees a string returned by the library; NULL is ignored. */
void dvdi_string_free(char *s);

/* Exercises the panic boundary: panics inside the library and returns DVDI_ERR_PANIC with a
 * message in `*err`, exactly as any other function would after an internal bug. For tests. */
dvdi_status dvdi_selftest_panic(char **err);

#ifdef __cplusplus
}
#endif

#endif /* DVDI_H */
