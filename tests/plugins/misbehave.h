// misbehave.h — the failures the crasher test plugins act out when a text
// they are given holds a trigger word. Run in memos-plugin-host, none of
// them may cost memosd more than the call (tests/README.md, "crash matrix").
//
// Dying or stuck (acted out here, never returning):
//   "segfault"  SIGSEGV              "abort"      abort()
//   "exit"      exit(3)              "terminate"  an exception escapes (std::terminate)
//   "hang"      never answers
// Runaway memory ("hog"): allocates and touches memory without bound; with
// the host's memory limit the allocation fails and the SDK answers
// `resource`, without it the machine's OOM killer decides.
// Bad replies (returned, for the plugin to act out):
//   "garbage"   bytes that are no Cap'n Proto message
//   "wrongkind" a well-formed reply of the wrong kind
//   "silent"    MEMOS_OK without any result set
//   "oversized" a reply over the host protocol's 256 MiB payload limit
// ("garbage" and "oversized" are acted out below the SDK, by call_or_garbage).
#pragma once

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string_view>
#include <vector>

#include "memos/plugin_sdk.h"

namespace memos::test_plugins {

enum class BadReply { none, wrong_kind, silent };

// An oversized reply: just over the 256 MiB that
// plugins/loader/host_protocol.h allows a payload.
constexpr std::size_t kOversizedBytes = (std::size_t{256} << 20) + (4u << 20);

inline void hog_memory() {
  std::vector<std::unique_ptr<char[]>> held;
  for (;;) {
    constexpr std::size_t kChunk = 16u << 20;
    held.emplace_back(new char[kChunk]);
    std::memset(held.back().get(), 0x5a, kChunk);  // touched: really resident
  }
}

// Acts out a dying trigger in `text`, or returns the bad reply it asks for.
inline BadReply misbehave(std::string_view text) {
  auto has = [&](const char* word) { return text.find(word) != text.npos; };
  if (has("segfault")) ::raise(SIGSEGV);
  if (has("abort")) std::abort();
  if (has("exit")) std::exit(3);
  if (has("terminate")) std::terminate();
  if (has("hang")) {
    for (;;) ::pause();
  }
  if (has("hog")) hog_memory();
  if (has("wrongkind")) return BadReply::wrong_kind;
  if (has("silent")) return BadReply::silent;
  return BadReply::none;
}

// The SDK's call(), except that a request whose bytes hold "garbage" is
// answered MEMOS_OK with bytes that do not decode, and one that holds
// "oversized" with kOversizedBytes (text travels verbatim in a Cap'n Proto
// message, so the raw request shows the trigger). The oversized reply is a
// read-only mapping of zero pages: it costs no memory (and no time) to
// offer, so the test measures the host's refusal, not the machine.
inline void call_or_garbage(memos_instance* handle, memos_call* call, const std::uint8_t* request,
                            std::size_t size) noexcept {
  std::string_view bytes(reinterpret_cast<const char*>(request), size);
  if (bytes.find("garbage") != bytes.npos) {
    static const std::uint8_t junk[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                          0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    const auto* instance = reinterpret_cast<const plugin_sdk::detail::Instance*>(handle);
    instance->api->complete(call, MEMOS_OK, junk, sizeof junk);
    return;
  }
  if (bytes.find("oversized") != bytes.npos) {
    const auto* instance = reinterpret_cast<const plugin_sdk::detail::Instance*>(handle);
    void* zeros = ::mmap(nullptr, kOversizedBytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (zeros == MAP_FAILED) {
      plugin_sdk::detail::complete_error(instance->api, call, MEMOS_ERR_RESOURCE, "mmap failed");
      return;
    }
    instance->api->complete(call, MEMOS_OK, static_cast<const std::uint8_t*>(zeros),
                            kOversizedBytes);
    ::munmap(zeros, kOversizedBytes);
    return;
  }
  plugin_sdk::detail::call(handle, call, request, size);
}

// MEMOS_PLUGIN's descriptor with call_or_garbage as the call.
template <class P>
const memos_plugin_descriptor* describe_misbehaving(const char* name, const char* version,
                                                    std::uint32_t kinds) noexcept {
  static const memos_plugin_vtable vtable = {
      sizeof(memos_plugin_vtable), &plugin_sdk::detail::create<P>, &plugin_sdk::detail::destroy,
      &call_or_garbage, nullptr};
  static const memos_plugin_descriptor descriptor = {sizeof(memos_plugin_descriptor),
                                                     0,
                                                     MEMOS_PLUGIN_MAGIC,
                                                     MEMOS_PLUGIN_ABI_MAJOR,
                                                     MEMOS_PLUGIN_ABI_MINOR,
                                                     kinds,
                                                     name,
                                                     version,
                                                     "test",
                                                     &vtable};
  return &descriptor;
}

}  // namespace memos::test_plugins

#define MEMOS_MISBEHAVING_PLUGIN(CLASS, NAME, VERSION, KINDS)                                    \
  extern "C" MEMOS_PLUGIN_EXPORT const memos_plugin_descriptor* memos_plugin_describe_v1(void) { \
    return ::memos::test_plugins::describe_misbehaving<CLASS>(NAME, VERSION, KINDS);             \
  }
