/*
 * memos/plugin.h — the memosd plugin ABI, version 1.
 *
 * A plugin is a shared library that exports one C function,
 * memos_plugin_describe_v1(), returning a descriptor: who the plugin is,
 * which ABI it was built for, and a table of four functions. Everything a
 * plugin and memosd exchange beyond that (configuration, capabilities,
 * requests, replies) is a Cap'n Proto message of ipc/schema/plugin.capnp,
 * passed as bytes. The same bytes travel over a socketpair when the plugin
 * runs isolated in memos-plugin-host, so a plugin cannot tell the difference.
 *
 * Versioning. The major version must match exactly; memosd refuses any
 * other. Within a major version structs only grow at their end, and every
 * struct starts with its size, so a plugin built against an older minor works
 * with a newer host (the host reads only what the plugin's sizes cover) and a
 * newer plugin works with an older host (it must check host->struct_size and
 * host->abi_minor before using a function added later). Functions in
 * memos_host_api are append-only.
 *
 * Ownership. Memory is never freed across the boundary. Bytes passed in are
 * borrowed for the duration of the function they are passed to; bytes passed
 * to complete() and partial() are copied by the host before it returns. The descriptor and
 * vtable a plugin returns must stay valid for the life of the process: the
 * host never calls dlclose().
 *
 * Errors. No C++ exception may cross this boundary: a function that throws
 * out of the plugin terminates the process (memosd or memos-plugin-host).
 * Failures are reported with memos_status codes and, for calls, an error
 * reply.
 *
 * Threading. memosd calls create() and destroy() on one thread, never
 * concurrently for one instance. call() may be invoked from several worker
 * threads at once on one instance; complete(), partial() and is_cancelled()
 * may be called from any thread.
 *
 * History. Minor 1 added memos_host_api.partial (streamed results). Minor 2
 * added the router kind: PluginRequest.route and RouterCapabilities
 * (plugin.capnp); a host of minor 1 never asks a plugin to route, and older
 * plugins load unchanged. Minor 3 added PluginRequest.exportSnapshot and
 * importSnapshot: a retriever's collection as one file, moved between
 * nodes by memosd; a plugin of an older minor answers them `unsupported`,
 * and memosd then rebuilds that retriever's collections as before.
 */
#ifndef MEMOS_PLUGIN_H
#define MEMOS_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MEMOS_PLUGIN_MAGIC UINT64_C(0x4D454D4F53504C47) /* "MEMOSPLG" */
#define MEMOS_PLUGIN_ABI_MAJOR 1
#define MEMOS_PLUGIN_ABI_MINOR 3

#if defined(__GNUC__)
#define MEMOS_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define MEMOS_PLUGIN_EXPORT
#endif

/* Outcome of a plugin function. Values are stable; new ones are added at the
 * end, and a host treats one it does not know as MEMOS_ERR_INTERNAL. */
typedef enum memos_status {
  MEMOS_OK = 0,
  MEMOS_ERR_INVALID = 1,     /* the request or configuration is malformed */
  MEMOS_ERR_UNSUPPORTED = 2, /* this plugin does not do that */
  MEMOS_ERR_RESOURCE = 3,    /* out of memory, disk or another resource; retryable */
  MEMOS_ERR_INTERNAL = 4,    /* a bug in the plugin */
  MEMOS_ERR_CANCELLED = 5,   /* the call was cancelled */
  MEMOS_ERR_BUSY = 6         /* overloaded; retryable */
} memos_status;

/* What a plugin provides: a bitmask in the descriptor and the manifest. */
enum {
  MEMOS_KIND_EMBEDDER = 1u << 0,
  MEMOS_KIND_RETRIEVER = 1u << 1,
  MEMOS_KIND_ROUTER = 1u << 2,
  MEMOS_KIND_EXECUTOR = 1u << 3
};

/* Log levels for memos_host_api.log. */
enum { MEMOS_LOG_DEBUG = 0, MEMOS_LOG_INFO = 1, MEMOS_LOG_WARN = 2, MEMOS_LOG_ERROR = 3 };

/* One call in flight. Opaque and owned by the host; valid until the plugin
 * has called complete() for it and cancel() (if any) has returned. */
typedef struct memos_call memos_call;

/* One instance of a plugin. Opaque to the host; owned by the plugin, from
 * create() until destroy(). */
typedef struct memos_instance memos_instance;

/* What the host offers a plugin. Append-only: check struct_size before using
 * a member added after minor 0. Valid from create() until destroy(). */
typedef struct memos_host_api {
  uint32_t struct_size; /* sizeof(memos_host_api) as the host knows it */
  uint32_t abi_minor;   /* the host's MEMOS_PLUGIN_ABI_MINOR */
  void* host_data;      /* pass back as the first argument of log() */

  /* Writes `size` bytes of `message` (UTF-8, no terminator needed) to the
   * daemon's log at `level`. Thread-safe. Never fails. */
  void (*log)(void* host_data, int level, const char* message, size_t size);

  /* Delivers the outcome of `call`: with MEMOS_OK, `reply` holds a
   * PluginResponse message (plugin.capnp); otherwise `reply` may hold a
   * PluginResponse with an error, or be empty. The host copies the bytes
   * before returning. Must be called exactly once per call, from any thread,
   * possibly before call() returns. A second call is ignored and logged. */
  void (*complete)(memos_call* call, memos_status status, const uint8_t* reply, size_t size);

  /* Whether the host has given up on `call` (its client left, its deadline
   * passed). Long work should poll it and complete with MEMOS_ERR_CANCELLED.
   * Thread-safe. */
  int (*is_cancelled)(memos_call* call);

  /* Minor 1. Reports `size` bytes of `message` (a PluginPartial message,
   * plugin.capnp) for `call` before it completes: progress, or a piece of a
   * result that is streamed (a generate with `stream` set). Partials of one
   * call are delivered in the order they are made; the host copies the bytes
   * before returning and may drop them when nobody listens. Must not be
   * called for a call already completed (it is ignored). Never fails.
   * A plugin checks that the host has it first:
   *   host->struct_size >= offsetof(memos_host_api, partial) + sizeof(host->partial)
   *   && host->partial != NULL */
  void (*partial)(memos_call* call, const uint8_t* message, size_t size);
} memos_host_api;

/* The plugin's functions. */
typedef struct memos_plugin_vtable {
  uint32_t struct_size; /* sizeof(memos_plugin_vtable) as the plugin knows it */

  /* Makes an instance from `config` (a PluginConfig message, borrowed for
   * this call). `host` stays valid until destroy(). On MEMOS_OK, *out is
   * set. Errors: MEMOS_ERR_INVALID (bad configuration), MEMOS_ERR_RESOURCE,
   * MEMOS_ERR_INTERNAL. */
  memos_status (*create)(const memos_host_api* host, const uint8_t* config, size_t config_size,
                         memos_instance** out);

  /* Ends an instance. The host calls it only when no call is in flight. */
  void (*destroy)(memos_instance* instance);

  /* Starts a call with `request` (a PluginRequest message, borrowed for
   * this function only: copy what outlives it). The plugin answers through
   * host->complete(call, ...) exactly once, now or later, from any thread. */
  void (*call)(memos_instance* instance, memos_call* call, const uint8_t* request,
               size_t request_size);

  /* Asks the plugin to finish `call` early; it still completes it (with
   * MEMOS_ERR_CANCELLED, or normally if it was done). May be NULL. */
  void (*cancel)(memos_instance* instance, memos_call* call);
} memos_plugin_vtable;

/* Who the plugin is. Returned by memos_plugin_describe_v1(); valid for the
 * life of the process. */
typedef struct memos_plugin_descriptor {
  uint32_t struct_size;  /* sizeof(memos_plugin_descriptor) as the plugin knows it */
  uint32_t reserved;     /* 0 */
  uint64_t magic;        /* MEMOS_PLUGIN_MAGIC */
  uint16_t abi_major;    /* MEMOS_PLUGIN_ABI_MAJOR the plugin was built with */
  uint16_t abi_minor;    /* MEMOS_PLUGIN_ABI_MINOR the plugin was built with */
  uint32_t kinds;        /* MEMOS_KIND_* bits */
  const char* name;      /* must equal the manifest's name */
  const char* version;   /* the plugin's own version, free form */
  const char* build_abi; /* compiler and C++ runtime, for diagnostics */
  const memos_plugin_vtable* vtable;
} memos_plugin_descriptor;

/* The one symbol a plugin exports. Must not fail and must be cheap: memosd
 * calls it right after dlopen() to validate the plugin. */
MEMOS_PLUGIN_EXPORT const memos_plugin_descriptor* memos_plugin_describe_v1(void);

typedef const memos_plugin_descriptor* (*memos_plugin_describe_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* MEMOS_PLUGIN_H */
