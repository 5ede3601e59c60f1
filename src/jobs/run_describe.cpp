// The "describe" job. Placeholder until the chat-completions work lands: refuses clearly.
#include "core/error.hpp"
#include "jobs/job_kinds.hpp"

namespace pictor::jobs {

nlohmann::json run_describe_job(JobContext&) {
  throw Error("describe jobs are not available in this build");
}

}  // namespace pictor::jobs
