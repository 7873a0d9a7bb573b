// dvdi_isolator.hpp -- the Mesos isolator that forwards every call to libdvdi_ffi.so.
//
// This class owns no volume logic: it turns Mesos' protobuf arguments into JSON, runs the
// blocking library call on a thread of its own, and turns the answer back into a future.
// All the rules (DVDI_VOLUME_* grammar, plugin calls, checkpoint, reference counts) live in
// the Rust library behind ffi/include/dvdi.h.

#ifndef DVDI_ISOLATOR_HPP
#define DVDI_ISOLATOR_HPP

#include <memory>
#include <string>
#include <vector>

#include <mesos/mesos.hpp>

#include <mesos/slave/containerizer.hpp>
#include <mesos/slave/isolator.hpp>

#include <process/future.hpp>

#include <process/metrics/pull_gauge.hpp>

#include <stout/hashset.hpp>
#include <stout/nothing.hpp>
#include <stout/option.hpp>

#include <dvdi.h>

namespace dvdi {

class DvdiIsolator : public mesos::slave::Isolator
{
public:
  // Takes ownership of a handle made by dvdi_isolator_new().
  explicit DvdiIsolator(dvdi_isolator* handle);

  // Removes its metrics and drops this isolator's share of the handle; a library call still
  // running on its own thread (or a metric being read) keeps the handle alive until it
  // returns.
  ~DvdiIsolator() override;

  // Tasks of a task group (the default executor's pods) are nested containers: each one
  // carries its DVDI_VOLUME_* variables in its own CommandInfo and gets its own mount
  // namespace. Mesos' built-in docker/volume isolator supports them too.
  bool supportsNesting() override { return true; }

  // Standalone containers (launched through the agent API, no executor) may carry the
  // variables in their CommandInfo; a container without them costs one library call that
  // answers "no launch info".
  bool supportsStandalone() override { return true; }

  process::Future<Nothing> recover(
      const std::vector<mesos::slave::ContainerState>& states,
      const hashset<mesos::ContainerID>& orphans) override;

  process::Future<Option<mesos::slave::ContainerLaunchInfo>> prepare(
      const mesos::ContainerID& containerId,
      const mesos::slave::ContainerConfig& containerConfig) override;

  process::Future<Nothing> cleanup(const mesos::ContainerID& containerId) override;

private:
  DvdiIsolator(const DvdiIsolator&) = delete;
  DvdiIsolator& operator=(const DvdiIsolator&) = delete;

  // Shared with the threads that run library calls, so that destroying the isolator while
  // a call is under way cannot free the handle under it.
  std::shared_ptr<dvdi_isolator> handle_;

  // The library's figures published in the agent's /metrics/snapshot under dvdi/ (added in
  // the constructor, removed in the destructor). This class counts nothing itself.
  std::vector<process::metrics::PullGauge> gauges_;
};

} // namespace dvdi

#endif // DVDI_ISOLATOR_HPP
