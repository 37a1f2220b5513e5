// What a tenant's policy lets it run on (kernel/policy_use.h): the executor
// plugin, its model and, since issue 22, the device it runs on.
#define BOOST_TEST_MODULE policy_use
#include <boost/test/unit_test.hpp>

#include <string>

#include "kernel/config.h"
#include "kernel/policy_use.h"
#include "policies/policy.h"

using memos::kernel::check_executor;
using memos::kernel::Config;
using memos::policies::TenantPolicy;

namespace {

// A policy built in one place: GCC 12 takes optional<string> members set
// one by one in a test body for maybe uninitialized (a false positive).
TenantPolicy policy(const char* device, const char* model = nullptr) {
  TenantPolicy p;
  if (device) p.executor_device.emplace(device);
  if (model) p.executor_model.emplace(model);
  return p;
}

bool says(const memos::kernel::Status& s, const std::string& text) {
  return !s.ok() && s.message.find(text) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_CASE(any_device_without_executor_device) {
  const TenantPolicy p = policy(nullptr);
  Config c;
  BOOST_TEST(check_executor(p, c, "CPU").ok());
  BOOST_TEST(check_executor(p, c, "CUDA0").ok());
}

BOOST_AUTO_TEST_CASE(executor_device_refuses_an_executor_on_the_other_device) {
  const TenantPolicy gpu_only = policy("gpu");
  Config c;
  BOOST_TEST(check_executor(gpu_only, c, "CUDA0").ok());
  const auto on_cpu = check_executor(gpu_only, c, "CPU");
  BOOST_TEST(says(on_cpu, "runs on the CPU, and use.executor_device asks for gpu"), on_cpu.message);
  BOOST_TEST((on_cpu.code == memos::kernel::Code::permission_denied));
  // An executor that named no device (an older plugin) runs on the CPU.
  BOOST_TEST(!check_executor(gpu_only, c, "").ok());

  const TenantPolicy cpu_only = policy("cpu");
  BOOST_TEST(check_executor(cpu_only, c, "CPU").ok());
  const auto on_gpu = check_executor(cpu_only, c, "CUDA0");
  BOOST_TEST(says(on_gpu, "runs on CUDA0, and use.executor_device asks for cpu"), on_gpu.message);
}

BOOST_AUTO_TEST_CASE(the_model_and_plugin_are_still_checked_first) {
  TenantPolicy p = policy("cpu", "/srv/other.gguf");
  Config c;
  c.executor.model = "/srv/model.gguf";
  BOOST_TEST(says(check_executor(p, c, "CPU"), "use.executor_model"));
  p.executor_model.reset();
  p.executors = std::vector<std::string>{"another-executor"};
  BOOST_TEST(says(check_executor(p, c, "CPU"), "is not in use.executors"));
}
