// Plugins that get the ABI or its calls wrong, one per BAD_PLUGIN_*
// definition, each built as its own shared object for the loader tests.
// They use the raw C ABI, not the SDK, since the SDK would not let them be
// wrong.
#include <cstddef>
#include <cstring>

#include "memos/plugin.h"

namespace {

const memos_host_api* host_api = nullptr;

memos_status create(const memos_host_api* host, const uint8_t*, size_t, memos_instance** out) {
  host_api = host;
  *out = reinterpret_cast<memos_instance*>(new int(0));
  return MEMOS_OK;
}

void destroy(memos_instance* instance) {
  delete reinterpret_cast<int*>(instance);
}

void call(memos_instance*, memos_call* call, const uint8_t*, size_t) {
#if defined(BAD_PLUGIN_GARBAGE_REPLY)
  // Bytes that are not a Cap'n Proto message.
  static const uint8_t junk[16] = {0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  host_api->complete(call, MEMOS_OK, junk, sizeof(junk));
#elif defined(BAD_PLUGIN_HUGE_REPLY)
  // Far more bytes than any reply may have.
  static uint8_t big[64 << 20];
  host_api->complete(call, MEMOS_OK, big, sizeof(big));
#elif defined(BAD_PLUGIN_TWICE)
  // Completes twice: the second must be ignored.
  host_api->complete(call, MEMOS_ERR_UNSUPPORTED, nullptr, 0);
  host_api->complete(call, MEMOS_ERR_UNSUPPORTED, nullptr, 0);
#elif defined(BAD_PLUGIN_SILENT)
  // Never completes: the host's deadline must end the wait.
  (void)call;
#else
  host_api->complete(call, MEMOS_ERR_UNSUPPORTED, nullptr, 0);
#endif
}

#if defined(BAD_PLUGIN_OLD_VTABLE)
// A plugin from before cancel() existed: its vtable is shorter.
const memos_plugin_vtable vtable = {offsetof(memos_plugin_vtable, cancel), &create, &destroy, &call,
                                    nullptr};
#else
const memos_plugin_vtable vtable = {sizeof(memos_plugin_vtable), &create, &destroy, &call, nullptr};
#endif

const memos_plugin_descriptor descriptor = {
#if defined(BAD_PLUGIN_SHORT)
    8,
#else
    sizeof(memos_plugin_descriptor),
#endif
    0,
#if defined(BAD_PLUGIN_MAGIC)
    0x1234,
#else
    MEMOS_PLUGIN_MAGIC,
#endif
#if defined(BAD_PLUGIN_MAJOR)
    MEMOS_PLUGIN_ABI_MAJOR + 1,
#else
    MEMOS_PLUGIN_ABI_MAJOR,
#endif
    MEMOS_PLUGIN_ABI_MINOR,
    MEMOS_KIND_EMBEDDER,
#if defined(BAD_PLUGIN_NAME)
    "someone-else",
#else
    PLUGIN_NAME,
#endif
    "0",
    "test",
    &vtable};

}  // namespace

#if !defined(BAD_PLUGIN_NO_SYMBOL)
extern "C" MEMOS_PLUGIN_EXPORT const memos_plugin_descriptor* memos_plugin_describe_v1(void) {
  return &descriptor;
}
#else
extern "C" MEMOS_PLUGIN_EXPORT const memos_plugin_descriptor* some_other_symbol(void) {
  return &descriptor;
}
#endif
