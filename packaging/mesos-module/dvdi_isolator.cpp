// dvdi_isolator.cpp -- the Mesos module `com_emccode_mesos_DockerVolumeDriverIsolator`:
// a thin C++ shim that forwards isolator calls to libdvdi_ffi.so (see ffi/include/dvdi.h).
//
// What crosses the C ABI is JSON in Mesos' protobuf-JSON mapping: stout's JSON::protobuf()
// writes the arguments, protobuf::parse<ContainerLaunchInfo>() reads the answer. Nothing
// here knows what a volume is, so the same source builds against every Mesos from 1.7 on.
//
// Threading: Mesos calls an isolator on the containerizer's actor, and a library call can
// block for as long as a plugin's deadline. Each call therefore runs on a std::thread of its
// own that completes a process::Promise; the future goes back to Mesos at once. (Not
// process::async: that runs the function on a libprocess worker thread, and a few stuck
// plugins would then stall every actor of the agent.) Completing a future from a thread
// that is not libprocess' is allowed: the continuations Mesos chains on an isolator's future
// either defer() to an actor or call the next isolator, whose methods dispatch().

#include "dvdi_isolator.hpp"

#include <pthread.h>

#include <chrono>
#include <cstring>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include <glog/logging.h>

#include <mesos/module/isolator.hpp>

#include <process/future.hpp>

#include <process/metrics/metrics.hpp>
#include <process/metrics/pull_gauge.hpp>

#include <stout/error.hpp>
#include <stout/foreach.hpp>
#include <stout/json.hpp>
#include <stout/none.hpp>
#include <stout/protobuf.hpp>
#include <stout/stringify.hpp>
#include <stout/try.hpp>

// Shown by the agent with the module's other fields; a packager may set them (-D...).
#ifndef DVDI_MODULE_AUTHOR
#define DVDI_MODULE_AUTHOR "dvdi-rs"
#endif
#ifndef DVDI_MODULE_EMAIL
#define DVDI_MODULE_EMAIL "dvdi-rs@invalid"
#endif

using mesos::ContainerID;
using mesos::Parameter;
using mesos::Parameters;
using mesos::slave::ContainerConfig;
using mesos::slave::ContainerLaunchInfo;
using mesos::slave::ContainerState;
using mesos::slave::Isolator;

// Forwards the library's log records to glog, so they land in the agent's log.
extern "C" {

// `static`: a C-linkage callback that is not exported from the module.
static void dvdiLogToGlog(void* context, dvdi_log_level level, const char* message)
{
  (void) context;

  // Called from library threads: nothing may escape into Rust.
  try {
    const char* text = message != nullptr ? message : "(no message)";
    switch (level) {
      case DVDI_LOG_ERROR:   LOG(ERROR) << "dvdi: " << text; break;
      case DVDI_LOG_WARNING: LOG(WARNING) << "dvdi: " << text; break;
      case DVDI_LOG_INFO:    LOG(INFO) << "dvdi: " << text; break;
      case DVDI_LOG_DEBUG:   VLOG(1) << "dvdi: " << text; break;
      default:               LOG(INFO) << "dvdi: " << text; break;
    }
  } catch (...) {
    // Dropping one log record is better than taking the agent down.
  }
}

} // extern "C"


namespace {

// A string the library handed out: freed with dvdi_string_free() whatever happens.
class LibraryString
{
public:
  LibraryString() : s_(nullptr) {}
  ~LibraryString() { dvdi_string_free(s_); }

  char** out() { return &s_; }
  const char* get() const { return s_; }

private:
  LibraryString(const LibraryString&) = delete;
  LibraryString& operator=(const LibraryString&) = delete;

  char* s_;
};


const char* statusName(dvdi_status status)
{
  switch (status) {
    case DVDI_OK: return "DVDI_OK";
    case DVDI_ERR_NULL_ARGUMENT: return "DVDI_ERR_NULL_ARGUMENT";
    case DVDI_ERR_INVALID_UTF8: return "DVDI_ERR_INVALID_UTF8";
    case DVDI_ERR_INVALID_JSON: return "DVDI_ERR_INVALID_JSON";
    case DVDI_ERR_CONFIG: return "DVDI_ERR_CONFIG";
    case DVDI_ERR_INVALID_INPUT: return "DVDI_ERR_INVALID_INPUT";
    case DVDI_ERR_VOLUME: return "DVDI_ERR_VOLUME";
    case DVDI_ERR_STATE: return "DVDI_ERR_STATE";
    case DVDI_ERR_PANIC: return "DVDI_ERR_PANIC";
    case DVDI_ERR_BUFFER_SIZE: return "DVDI_ERR_BUFFER_SIZE";
  }
  return "unknown dvdi status";
}


// The error of a failed library call, logged in full (with the status code) and returned
// as the text Mesos shows in the task's status message.
Error libraryError(
    const std::string& operation,
    dvdi_status status,
    const LibraryString& err)
{
  const std::string text = err.get() != nullptr
    ? std::string(err.get())
    : std::string("the library gave no message");

  LOG(ERROR) << "dvdi: " << operation << " failed (" << statusName(status)
             << "): " << text;

  return Error("dvdi: " + operation + ": " + text);
}


// Runs `work` on a new thread and returns a future of its result at once. The thread is
// detached: it owns copies of everything it uses. A discard request from Mesos is not
// honoured: a library call cannot be stopped halfway, and Mesos calls cleanup() only after
// prepare()'s future has completed, so finishing the call is what keeps the books right.
template <typename T>
process::Future<T> runOffActor(
    const std::string& threadName,
    const std::string& operation,
    const std::function<Try<T>()>& work)
{
  std::shared_ptr<process::Promise<T>> promise(new process::Promise<T>());
  process::Future<T> future = promise->future();

  try {
    std::thread([promise, threadName, operation, work]() {
      // Linux truncates thread names to 15 bytes; the name shows in `top -H` and gdb.
      pthread_setname_np(pthread_self(), threadName.substr(0, 15).c_str());

      try {
        Try<T> result = work();
        if (result.isError()) {
          promise->fail(result.error());
        } else {
          promise->set(result.get());
        }
      } catch (const std::exception& e) {
        LOG(ERROR) << "dvdi: " << operation << ": unexpected exception: " << e.what();
        promise->fail("dvdi: " + operation + ": unexpected exception: " + e.what());
      } catch (...) {
        LOG(ERROR) << "dvdi: " << operation << ": unexpected exception";
        promise->fail("dvdi: " + operation + ": unexpected exception");
      }
    }).detach();
  } catch (const std::system_error& e) {
    LOG(ERROR) << "dvdi: " << operation << ": cannot start a thread: " << e.what();
    return process::Failure(
        "dvdi: " + operation + ": cannot start a thread: " + e.what());
  }

  return future;
}


// Mesos admits a module only when it was built against the agent's own version: for the
// "Isolator" kind, ModuleManager's minimum version is MESOS_VERSION itself (1.7 through
// 1.12), and with a compatible() function a module newer than the agent is refused too.
// So returning true here never lets this build into an agent of another version. What this
// function checks instead is the other half of the pair: that the libdvdi_ffi.so the
// dynamic loader found speaks the C ABI this shim was compiled against.
bool compatible()
{
  const uint32_t loaded = dvdi_abi_version();
  if (loaded != DVDI_ABI_VERSION) {
    LOG(ERROR) << "dvdi: libdvdi_ffi.so has C ABI version " << loaded
               << " but this module was built for version " << DVDI_ABI_VERSION
               << "; install the libdvdi_ffi.so that came with this module";
    return false;
  }
  return true;
}


// Every module parameter becomes a string value of one JSON object; the library parses and
// validates them (unknown keys are its error, and it names them).
Isolator* create(const Parameters& parameters)
{
  dvdi_set_logger(&dvdiLogToGlog, nullptr);

  JSON::Object config;
  foreach (const Parameter& parameter, parameters.parameter()) {
    if (config.values.count(parameter.key()) > 0) {
      LOG(WARNING) << "dvdi: module parameter '" << parameter.key()
                   << "' is given more than once; the last value wins";
    }
    config.values[parameter.key()] = JSON::String(parameter.value());
  }

  dvdi_isolator* handle = nullptr;
  LibraryString err;
  const dvdi_status status =
    dvdi_isolator_new(stringify(config).c_str(), &handle, err.out());

  if (status != DVDI_OK) {
    LOG(ERROR) << "dvdi: cannot create the isolator com_emccode_mesos_DockerVolumeDriverIsolator ("
               << statusName(status) << "): "
               << (err.get() != nullptr ? err.get() : "the library gave no message");
    return nullptr;
  }

  LOG(INFO) << "dvdi: isolator created (C ABI version " << dvdi_abi_version() << ")";
  return new dvdi::DvdiIsolator(handle);
}

} // namespace


namespace dvdi {

// The library's figures for the gauges. libprocess reads every gauge of a /metrics/snapshot
// one after the other, so the figures are read from the library at most once a second and
// shared by all of them: one snapshot, one library call. (The call takes no lock and makes
// no plugin call: it may run on the metrics actor.)
class MetricsReader
{
public:
  explicit MetricsReader(const std::shared_ptr<dvdi_isolator>& handle)
    : handle_(handle), read_(false) {}

  // The figures, or None when the library could not give them (logged).
  Option<dvdi_metrics> read()
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now();
    if (read_ && now - when_ < std::chrono::seconds(1)) {
      return last_;
    }
    read_ = true;
    when_ = now;

    dvdi_metrics figures;
    std::memset(&figures, 0, sizeof(figures));
    LibraryString err;
    const dvdi_status status =
      dvdi_isolator_metrics(handle_.get(), &figures, sizeof(figures), err.out());
    if (status != DVDI_OK) {
      LOG(WARNING) << "dvdi: cannot read the isolator's metrics (" << statusName(status)
                   << "): " << (err.get() != nullptr ? err.get() : "no message");
      last_ = None();
    } else {
      last_ = figures;
    }
    return last_;
  }

private:
  const std::shared_ptr<dvdi_isolator> handle_;
  std::mutex mutex_;
  bool read_;
  std::chrono::steady_clock::time_point when_;
  Option<dvdi_metrics> last_;
};

} // namespace dvdi


namespace {

// One published figure of a dvdi_metrics; None leaves it out of the snapshot (as libprocess
// leaves out a timer that has no value yet).
typedef std::function<Option<double>(const dvdi_metrics&)> Figure;


// A counter of the library.
Figure counter(uint64_t dvdi_metrics::*member)
{
  return [member](const dvdi_metrics& m) -> Option<double> {
    return static_cast<double>(m.*member);
  };
}


// A gauge counted from the checkpoint: left out when the library could not count it.
Figure volumeGauge(uint64_t dvdi_metrics::*member)
{
  return [member](const dvdi_metrics& m) -> Option<double> {
    if (m.volumes_known == 0) {
      return None();
    }
    return static_cast<double>(m.*member);
  };
}


// A field of a timer, in milliseconds unless `count`; left out while `presence` is 0 (no
// duration yet, or none in the window).
Figure timerField(
    dvdi_timer_metrics dvdi_metrics::*timer,
    uint64_t dvdi_timer_metrics::*member,
    uint64_t dvdi_timer_metrics::*presence,
    bool count)
{
  return [timer, member, presence, count](const dvdi_metrics& m) -> Option<double> {
    const dvdi_timer_metrics& t = m.*timer;
    if (t.*presence == 0) {
      return None();
    }
    const double value = static_cast<double>(t.*member);
    return count ? value : value / 1000.0;
  };
}


// `dvdi/<prefix>_ms` and its statistics, named as libprocess names a Timer's.
void timerFigures(
    const std::string& prefix,
    dvdi_timer_metrics dvdi_metrics::*timer,
    std::vector<std::pair<std::string, Figure>>* out)
{
  typedef dvdi_timer_metrics T;
  const std::string name = "dvdi/" + prefix + "_ms";
  out->push_back(std::make_pair(name, timerField(timer, &T::last_us, &T::count, false)));
  out->push_back(std::make_pair(name + "/count", timerField(timer, &T::count, &T::count, true)));
  out->push_back(
      std::make_pair(name + "/total", timerField(timer, &T::total_us, &T::count, false)));
  out->push_back(std::make_pair(name + "/min", timerField(timer, &T::min_us, &T::window, false)));
  out->push_back(std::make_pair(name + "/max", timerField(timer, &T::max_us, &T::window, false)));
  out->push_back(std::make_pair(name + "/p50", timerField(timer, &T::p50_us, &T::window, false)));
  out->push_back(std::make_pair(name + "/p90", timerField(timer, &T::p90_us, &T::window, false)));
  out->push_back(std::make_pair(name + "/p95", timerField(timer, &T::p95_us, &T::window, false)));
  out->push_back(std::make_pair(name + "/p99", timerField(timer, &T::p99_us, &T::window, false)));
}


// Every name published under dvdi/, with its figure (packaging/README.md lists them).
std::vector<std::pair<std::string, Figure>> figures()
{
  typedef dvdi_metrics M;
  std::vector<std::pair<std::string, Figure>> all;
  all.push_back(std::make_pair("dvdi/prepares", counter(&M::prepares)));
  all.push_back(std::make_pair("dvdi/prepare_failures", counter(&M::prepare_failures)));
  all.push_back(std::make_pair("dvdi/cleanups", counter(&M::cleanups)));
  all.push_back(std::make_pair("dvdi/cleanup_failures", counter(&M::cleanup_failures)));
  all.push_back(std::make_pair("dvdi/recovers", counter(&M::recovers)));
  all.push_back(std::make_pair("dvdi/recover_failures", counter(&M::recover_failures)));
  all.push_back(std::make_pair("dvdi/plugin_timeouts", counter(&M::plugin_timeouts)));
  all.push_back(std::make_pair("dvdi/volumes_mounted", volumeGauge(&M::volumes_mounted)));
  all.push_back(
      std::make_pair("dvdi/unmounts_pending_retry", volumeGauge(&M::unmounts_pending_retry)));
  all.push_back(std::make_pair(
      "dvdi/unreadable_volume_records", volumeGauge(&M::unreadable_volume_records)));
  timerFigures("prepare", &M::prepare_time, &all);
  timerFigures("cleanup", &M::cleanup_time, &all);
  return all;
}

} // namespace


namespace dvdi {

DvdiIsolator::DvdiIsolator(dvdi_isolator* handle)
  : handle_(handle, &dvdi_isolator_free)
{
  const std::shared_ptr<MetricsReader> reader(new MetricsReader(handle_));

  typedef std::pair<std::string, Figure> Named;
  foreach (const Named& named, figures()) {
    const Figure figure = named.second;
    process::metrics::PullGauge gauge(
        named.first,
        [reader, figure]() -> process::Future<double> {
          const Option<dvdi_metrics> read = reader->read();
          if (read.isNone()) {
            return process::Failure("the library gave no figures");
          }
          const Option<double> value = figure(read.get());
          if (value.isNone()) {
            return process::Failure("no value");
          }
          return value.get();
        });

    const std::string name = named.first;
    process::metrics::add(gauge).onFailed([name](const std::string& message) {
      LOG(WARNING) << "dvdi: cannot publish metric " << name << ": " << message;
    });
    gauges_.push_back(gauge);
  }
}


DvdiIsolator::~DvdiIsolator()
{
  foreach (const process::metrics::PullGauge& gauge, gauges_) {
    process::metrics::remove(gauge);
  }
}


process::Future<Nothing> DvdiIsolator::recover(
    const std::vector<ContainerState>& states,
    const hashset<ContainerID>& orphans)
{
  // Serialize on the caller's thread: the arguments are references that do not outlive it.
  JSON::Array statesJson;
  foreach (const ContainerState& state, states) {
    statesJson.values.push_back(JSON::protobuf(state));
  }

  JSON::Array orphansJson;
  foreach (const ContainerID& orphan, orphans) {
    orphansJson.values.push_back(JSON::protobuf(orphan));
  }

  const std::shared_ptr<dvdi_isolator> handle = handle_;
  const std::string statesText = stringify(statesJson);
  const std::string orphansText = stringify(orphansJson);

  std::function<Try<Nothing>()> work = [handle, statesText, orphansText]() -> Try<Nothing> {
    LibraryString report;
    LibraryString err;
    const dvdi_status status = dvdi_isolator_recover(
        handle.get(), statesText.c_str(), orphansText.c_str(), report.out(), err.out());

    if (status != DVDI_OK) {
      return libraryError("recover", status, err);
    }

    if (report.get() != nullptr) {
      LOG(INFO) << "dvdi: recovered: " << report.get();
    }
    return Nothing();
  };

  return runOffActor<Nothing>("dvdi-recover", "recover", work);
}


process::Future<Option<ContainerLaunchInfo>> DvdiIsolator::prepare(
    const ContainerID& containerId,
    const ContainerConfig& containerConfig)
{
  const std::shared_ptr<dvdi_isolator> handle = handle_;
  const std::string operation = "prepare of container " + stringify(containerId);
  const std::string idText = stringify(JSON::protobuf(containerId));
  const std::string configText = stringify(JSON::protobuf(containerConfig));

  std::function<Try<Option<ContainerLaunchInfo>>()> work =
    [handle, operation, idText, configText]() -> Try<Option<ContainerLaunchInfo>> {
      LibraryString launchInfo;
      LibraryString err;
      const dvdi_status status = dvdi_isolator_prepare(
          handle.get(), idText.c_str(), configText.c_str(), launchInfo.out(), err.out());

      if (status != DVDI_OK) {
        return libraryError(operation, status, err);
      }

      if (launchInfo.get() == nullptr) {
        // No DVDI_VOLUME_* variables: nothing to mount, nothing to add to the launch.
        return Option<ContainerLaunchInfo>::none();
      }

      // From here on a failure leaves volumes mounted; Mesos follows a failed prepare with
      // cleanup(), which releases them.
      Try<JSON::Object> json = JSON::parse<JSON::Object>(launchInfo.get());
      if (json.isError()) {
        LOG(ERROR) << "dvdi: " << operation << ": the library's launch info is not a JSON"
                   << " object (" << json.error() << "): " << launchInfo.get();
        return Error("dvdi: " + operation + ": the library's launch info is not a JSON"
                     " object: " + json.error());
      }

      Try<ContainerLaunchInfo> info = ::protobuf::parse<ContainerLaunchInfo>(json.get());
      if (info.isError()) {
        LOG(ERROR) << "dvdi: " << operation << ": the library's launch info is not a"
                   << " ContainerLaunchInfo (" << info.error() << "): " << launchInfo.get();
        return Error("dvdi: " + operation + ": the library's launch info is not a"
                     " ContainerLaunchInfo: " + info.error());
      }

      return Option<ContainerLaunchInfo>(info.get());
    };

  return runOffActor<Option<ContainerLaunchInfo>>("dvdi-prepare", operation, work);
}


process::Future<Nothing> DvdiIsolator::cleanup(const ContainerID& containerId)
{
  const std::shared_ptr<dvdi_isolator> handle = handle_;
  const std::string operation = "cleanup of container " + stringify(containerId);
  const std::string idText = stringify(JSON::protobuf(containerId));

  std::function<Try<Nothing>()> work = [handle, operation, idText]() -> Try<Nothing> {
    LibraryString err;
    const dvdi_status status =
      dvdi_isolator_cleanup(handle.get(), idText.c_str(), err.out());

    if (status != DVDI_OK) {
      return libraryError(operation, status, err);
    }
    return Nothing();
  };

  return runOffActor<Nothing>("dvdi-cleanup", operation, work);
}

} // namespace dvdi


// The object mesos-agent looks up by name (dlsym) after loading this library. The name is
// mesos-module-dvdi's, so existing --modules and --isolation flags keep working.
mesos::modules::Module<Isolator> com_emccode_mesos_DockerVolumeDriverIsolator(
    MESOS_MODULE_API_VERSION,
    MESOS_VERSION,
    DVDI_MODULE_AUTHOR,
    DVDI_MODULE_EMAIL,
    "Docker volume driver isolator: mounts external volumes named in a task's "
    "DVDI_VOLUME_* variables (dvdi-rs, drop-in for mesos-module-dvdi).",
    compatible,
    create);
