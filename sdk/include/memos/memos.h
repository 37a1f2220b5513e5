/* memos.h — the C client of memosd (libmemos.so, memos.h(3)).
 *
 * A memos_client holds one connection to memosd's Unix socket. The C API is
 * the C++ SDK (memos/client.h) behind a C ABI: one implementation speaks
 * the protocol, and every call of the C++ SDK is here, with the same
 * behaviour and the same errors (client.h documents each in full; each
 * function below lists the codes it adds to those every call can return).
 *
 * CALLS. Each request has a blocking form and a pipelined one:
 *
 *   int memos_get(memos_client *c, ..., memos_item **item, memos_error *err);
 *   int memos_get_send(memos_client *c, ..., memos_pending **pending, memos_error *err);
 *   int memos_wait(memos_pending *pending, void *result, memos_error *err);
 *
 * (A call whose name would be its result's type takes _get: memos_status_get,
 * memos_kv_stats_get, memos_plugin_info_get, memos_tenant_usage_get,
 * memos_sched_status_get, memos_cluster_status_get.) The blocking form sends the request and waits
 * for its reply. The _send form returns as soon as the request is written: any number may be in
 * flight on one connection, and memosd may answer them in any order. Its
 * memos_pending is completed with its own reply; memos_wait waits for it,
 * stores the result where `result` points (the address of the pointer type
 * the blocking form takes: a memos_item ** for memos_get_send) and frees
 * the pending. memos_ready says whether memos_wait would block.
 *
 * RETURN VALUES. Every call returns MEMOS_OK (0) or an error code (enum
 * memos_code). On an error no result is stored, and when `err` is not NULL
 * it is filled with the code, the daemon's message, whether a retry may
 * succeed and, for MEMOS_RATE_LIMITED, when. `err` may be NULL. On success
 * `err` is left untouched.
 *
 * OWNERSHIP. Every result (a memos_item *, a memos_hit_list *, ...), every
 * error message, every string the library returns and every memos_pending
 * is one allocation, freed by memos_free() and by nothing else: a result's
 * strings and arrays live inside it and go with it. Results are read only
 * and never change. memos_free(NULL) does nothing. The memos_client is
 * closed by memos_close(). The library never keeps or frees a pointer the
 * caller passes (strings, option structs, buffers): it copies what it needs
 * before the call returns.
 *
 * STRINGS. Arguments are NUL-terminated UTF-8; NULL reads as the empty
 * string. Strings in results are memos_str: `ptr` is never NULL and is
 * NUL-terminated, `len` its length in bytes (text memosd stored may hold
 * U+0000: read `len` bytes).
 *
 * OPTIONS. Option and argument structs (memos_search_options, ...) have an
 * _init function that sets every field to its default; always call it
 * first, then set the fields wanted. A later version of this library only
 * adds fields at the end of a struct, with a new SONAME when it must.
 *
 * THREADS. A memos_client may be used from several threads at once. A
 * memos_pending may be waited on by one thread (any one). Results may be
 * read and freed from any thread. Callbacks (memos_chat_stream's pieces)
 * run on the client's reader thread: they must return soon and must not
 * wait for another call on that client.
 *
 * EXCEPTIONS. No C++ exception crosses this API; running out of memory is
 * MEMOS_NO_MEMORY.
 */
#ifndef MEMOS_MEMOS_H
#define MEMOS_MEMOS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MEMOS_API __attribute__((visibility("default")))

/* The library's version: major.minor.patch, the major that of its SONAME. */
#define MEMOS_VERSION_MAJOR 1
#define MEMOS_VERSION_MINOR 3
#define MEMOS_VERSION_PATCH 0
/* "1.3.0": the version of the library loaded, which may be newer than the
 * header's. */
MEMOS_API const char* memos_version(void);

/* ---- errors ---------------------------------------------------------------- */

/* The codes are those of memos::ErrorCode (client.h, Errors), plus two of
 * this API's own. */
enum memos_code {
  MEMOS_OK = 0,
  MEMOS_BAD_REQUEST,       /* malformed or invalid arguments; also a NULL
                              argument this API needs, or an enum value out
                              of range */
  MEMOS_NOT_FOUND,         /* the cube, item, version, ... does not exist */
  MEMOS_ALREADY_EXISTS,    /* a cube, snapshot or text of that name exists */
  MEMOS_TOO_LARGE,         /* over a configured limit */
  MEMOS_BUSY,              /* too many imports or connections; retryable */
  MEMOS_UNAVAILABLE,       /* shutting down, or a plugin it needs failed */
  MEMOS_INTERNAL,          /* a bug or unexpected storage failure in memosd */
  MEMOS_CONFLICT,          /* conflicts with the current state */
  MEMOS_PERMISSION_DENIED, /* administrators only, or the uid is refused */
  MEMOS_STORAGE_FULL,      /* the store's map or disk is full; retryable */
  MEMOS_QUOTA_EXCEEDED,    /* past a bound of the tenant's policy */
  MEMOS_RATE_LIMITED,      /* over a rate of the policy; retryable */
  MEMOS_UNKNOWN,           /* a code newer than this library */
  MEMOS_CONNECT_FAILED,    /* the socket could not be reached; retryable */
  MEMOS_CONNECTION_LOST,   /* closed before the reply; retryable */
  MEMOS_PROTOCOL_ERROR,    /* a reply this library cannot read */
  MEMOS_NO_MEMORY          /* the client ran out of memory */
};

typedef struct memos_error {
  int code;                /* enum memos_code */
  int retryable;           /* 1: the same call may succeed later */
  uint32_t retry_after_ms; /* MEMOS_RATE_LIMITED: when to retry */
  char* message;           /* NUL-terminated; free with memos_free() */
} memos_error;

/* The code's name as memosd's wire spells it ("notFound"); "ok" for
 * MEMOS_OK, "unknown" for a number that is no code. Static storage. */
MEMOS_API const char* memos_strerror(int code);

/* Frees anything this library returned (see OWNERSHIP); a memos_pending
 * freed unwaited is dropped (its reply is discarded when it comes). */
MEMOS_API void memos_free(void* p);

/* ---- values in results: memos/memos_results.h ------------------------------ */

#include "memos/memos_results.h" /* memos_str, memos_item, memos_hits, ... */

/* ---- arguments ------------------------------------------------------------- */

typedef struct memos_pair {
  const char *key, *value;
} memos_pair;

typedef struct memos_client_options {
  size_t max_message_bytes;  /* replies larger are MEMOS_PROTOCOL_ERROR; 16 MiB */
  int wait_searchable;       /* every item write answers once searchable */
  uint32_t max_staleness_ms; /* cluster mode: reads may be this stale; 0 */
} memos_client_options;
MEMOS_API void memos_client_options_init(memos_client_options* options);

/* types.h, NewItem. */
typedef struct memos_new_item {
  const char* text;
  const char* const* tags;
  size_t n_tags;
  const memos_pair* meta;
  size_t n_meta;
  float importance; /* 0..1 */
  int64_t ttl_ms;   /* 0: never expires */
  int64_t valid_from_ms, valid_to_ms;
  const char* session_id;
  const uint64_t* sources;
  size_t n_sources;
  uint64_t supersedes;
  const char* idempotency_key;
  int wait_searchable, allow_duplicate;
} memos_new_item;
MEMOS_API void memos_new_item_init(memos_new_item* item);

/* types.h, ItemChange: tags and meta are replaced only when set_tags and
 * set_meta are 1 (then an empty list clears them). */
typedef struct memos_item_change {
  const char* text;
  int set_tags;
  const char* const* tags;
  size_t n_tags;
  int set_meta;
  const memos_pair* meta;
  size_t n_meta;
  const char* session_id;
  const char* idempotency_key;
  int wait_searchable;
} memos_item_change;
MEMOS_API void memos_item_change_init(memos_item_change* change);

/* How a search or chat is routed (memos(7), "Routing"), as memctl(1)'s
 * --budget and --route write it: `budget` NULL (only the route), "low",
 * "mid" or "high" (every module at that tier, in a chat the answer too) or
 * "auto" (the router chooses; the route may name only answer); `route`
 * "MODULE=TIER,..." over the budget's tiers ("retrieve=high,answer=low").
 * Both NULL: not routed. A pair that breaks these rules is
 * MEMOS_BAD_REQUEST, before anything is sent. */
typedef struct memos_routing {
  const char* budget;
  const char* route;
  float lambda;            /* budget auto: the price of cost; 0: the tenant's */
  int64_t reference_ms;    /* when the question is asked; 0: now */
  uint32_t context_tokens; /* compress=mid's budget; 0: the daemon's */
} memos_routing;

/* types.h, SearchOptions. mode -1: the cube's default retriever. tiers and
 * states hold enum values. has_min_score: min_score applies. */
typedef struct memos_search_options {
  uint32_t k; /* 10 */
  const char* const* tags;
  size_t n_tags;
  int64_t as_of_ms;
  int include_archived;
  int mode;
  const char* const* any_tags;
  size_t n_any_tags;
  const memos_pair* meta;
  size_t n_meta;
  const int* tiers;
  size_t n_tiers;
  const int* states;
  size_t n_states;
  int64_t recorded_since_ms, recorded_until_ms;
  int64_t valid_since_ms, valid_until_ms;
  int explain;
  const char* const* more_cubes;
  size_t n_more_cubes;
  float recency_weight, importance_weight, retention_weight, mmr_lambda;
  int fresh;
  int has_min_score;
  float min_score;
  memos_routing routing;
} memos_search_options;
MEMOS_API void memos_search_options_init(memos_search_options* options);

typedef struct memos_adapter_use {
  const char* name;
  float scale; /* 0: the item's own */
} memos_adapter_use;

/* types.h, ChatOptions. mode -1: the cube's default. */
typedef struct memos_chat_options {
  uint32_t k; /* 5 */
  const uint64_t* ids;
  size_t n_ids;
  int mode;
  int activate, no_reuse;
  uint32_t max_tokens; /* 128 */
  float temperature;
  uint32_t top_k;
  float top_p;
  uint32_t seed;
  const memos_adapter_use* adapters;
  size_t n_adapters;
  int no_adapters;
  memos_routing routing;
} memos_chat_options;
MEMOS_API void memos_chat_options_init(memos_chat_options* options);

/* types.h, DistillArgs. */
typedef struct memos_distill_args {
  const char *cube, *name, *tag;
  const uint64_t* ids;
  size_t n_ids;
  uint32_t rank, steps;
  float scale;
  const char* description;
} memos_distill_args;
MEMOS_API void memos_distill_args_init(memos_distill_args* args);

/* ---- connections ------------------------------------------------------------- */

typedef struct memos_client memos_client;
typedef struct memos_pending memos_pending;

/* The socket used when none is given: $MEMOS_SOCKET, else memosd's default.
 * Free with memos_free(); NULL when out of memory. */
MEMOS_API char* memos_default_socket(void);

/* Connects to `socket_path` (NULL or "": memos_default_socket()).
 * `options` may be NULL (the defaults). Errors: MEMOS_CONNECT_FAILED. */
MEMOS_API int memos_connect(const char* socket_path, const memos_client_options* options,
                            memos_client** client, memos_error* err);
/* Closes the connection; requests still pending complete with
 * MEMOS_CONNECTION_LOST (their memos_pending must still be waited on or
 * freed). NULL does nothing. */
MEMOS_API void memos_close(memos_client* client);
/* Requests sent whose replies have not arrived. */
MEMOS_API size_t memos_in_flight(const memos_client* client);

/* Waits for a _send call's reply and stores its result (see CALLS); frees
 * `pending` whatever it returns. `result` may be NULL for calls with no
 * result, or to drop it. Errors: those of the blocking form. */
MEMOS_API int memos_wait(memos_pending* pending, void* result, memos_error* err);
/* 1 when memos_wait would not block, else 0. */
MEMOS_API int memos_ready(const memos_pending* pending);

/* Item ids as memctl prints them (13 characters of base32). memos_format_id
 * writes `buf` (at least MEMOS_ID_TEXT_SIZE bytes, NUL included);
 * memos_parse_id returns MEMOS_OK or MEMOS_BAD_REQUEST. */
#define MEMOS_ID_TEXT_SIZE 32
MEMOS_API void memos_format_id(uint64_t id, char buf[MEMOS_ID_TEXT_SIZE]);
MEMOS_API int memos_parse_id(const char* text, uint64_t* id);

/* ---- cubes -------------------------------------------------------------------- */

/* retriever -1: search.default_mode; language NULL: english.
 * Errors: MEMOS_BAD_REQUEST (the name, the language), MEMOS_ALREADY_EXISTS. */
MEMOS_API int memos_cube_create(memos_client* client, const char* name, int retriever,
                                const char* language, memos_cube** cube, memos_error* err);
MEMOS_API int memos_cube_create_send(memos_client* client, const char* name, int retriever,
                                     const char* language, memos_pending** pending,
                                     memos_error* err);
/* The tenant's cubes, then those shared with it ("owner/cube"). */
MEMOS_API int memos_cube_list(memos_client* client, memos_cubes** cubes, memos_error* err);
MEMOS_API int memos_cube_list_send(memos_client* client, memos_pending** pending, memos_error* err);
/* Errors: MEMOS_NOT_FOUND. */
MEMOS_API int memos_cube_show(memos_client* client, const char* name, memos_cube** cube,
                              memos_error* err);
MEMOS_API int memos_cube_show_send(memos_client* client, const char* name, memos_pending** pending,
                                   memos_error* err);
/* Removes a cube and all it holds. Errors: MEMOS_NOT_FOUND, MEMOS_CONFLICT
 * (it holds live items and `force` is 0). No result. */
MEMOS_API int memos_cube_remove(memos_client* client, const char* name, int force,
                                memos_error* err);
MEMOS_API int memos_cube_remove_send(memos_client* client, const char* name, int force,
                                     memos_pending** pending, memos_error* err);
/* Shares the caller's cube with `tenant`, read only or with `write`.
 * Errors: MEMOS_NOT_FOUND, MEMOS_BAD_REQUEST, MEMOS_PERMISSION_DENIED. */
MEMOS_API int memos_cube_share(memos_client* client, const char* name, const char* tenant,
                               int write, memos_cube** cube, memos_error* err);
MEMOS_API int memos_cube_share_send(memos_client* client, const char* name, const char* tenant,
                                    int write, memos_pending** pending, memos_error* err);
/* Errors: MEMOS_NOT_FOUND, MEMOS_PERMISSION_DENIED. */
MEMOS_API int memos_cube_unshare(memos_client* client, const char* name, const char* tenant,
                                 memos_cube** cube, memos_error* err);
MEMOS_API int memos_cube_unshare_send(memos_client* client, const char* name, const char* tenant,
                                      memos_pending** pending, memos_error* err);

/* ---- memory items --------------------------------------------------------------- */
/* Writes are acknowledged once durable (client.h, "memory items"). */

/* Writes version 1 of a new item. Errors: MEMOS_NOT_FOUND, MEMOS_ALREADY_EXISTS
 * (the same text is live: the message names it), MEMOS_BAD_REQUEST,
 * MEMOS_TOO_LARGE, MEMOS_CONFLICT, MEMOS_QUOTA_EXCEEDED, MEMOS_RATE_LIMITED. */
MEMOS_API int memos_add(memos_client* client, const char* cube, const memos_new_item* item,
                        memos_item** added, memos_error* err);
MEMOS_API int memos_add_send(memos_client* client, const char* cube, const memos_new_item* item,
                             memos_pending** pending, memos_error* err);
/* version 0: the head. Errors: MEMOS_NOT_FOUND. */
MEMOS_API int memos_get(memos_client* client, const char* cube, uint64_t id, uint32_t version,
                        memos_item** item, memos_error* err);
MEMOS_API int memos_get_send(memos_client* client, const char* cube, uint64_t id, uint32_t version,
                             memos_pending** pending, memos_error* err);
/* A new version. Errors: MEMOS_NOT_FOUND, MEMOS_BAD_REQUEST, MEMOS_TOO_LARGE,
 * MEMOS_CONFLICT (frozen). */
MEMOS_API int memos_update(memos_client* client, const char* cube, uint64_t id,
                           const memos_item_change* change, memos_item** item, memos_error* err);
MEMOS_API int memos_update_send(memos_client* client, const char* cube, uint64_t id,
                                const memos_item_change* change, memos_pending** pending,
                                memos_error* err);
/* A tombstone version, returned. Errors: MEMOS_NOT_FOUND, MEMOS_CONFLICT. */
MEMOS_API int memos_remove(memos_client* client, const char* cube, uint64_t id,
                           const char* idempotency_key, memos_item** tombstone, memos_error* err);
MEMOS_API int memos_remove_send(memos_client* client, const char* cube, uint64_t id,
                                const char* idempotency_key, memos_pending** pending,
                                memos_error* err);
/* Every version, oldest first. Errors: MEMOS_NOT_FOUND. */
MEMOS_API int memos_history(memos_client* client, const char* cube, uint64_t id,
                            memos_items** versions, memos_error* err);
MEMOS_API int memos_history_send(memos_client* client, const char* cube, uint64_t id,
                                 memos_pending** pending, memos_error* err);
/* state: enum memos_state. Errors: MEMOS_BAD_REQUEST (deleted),
 * MEMOS_NOT_FOUND, MEMOS_CONFLICT (already in it). */
MEMOS_API int memos_set_state(memos_client* client, const char* cube, uint64_t id, int state,
                              memos_item** item, memos_error* err);
MEMOS_API int memos_set_state_send(memos_client* client, const char* cube, uint64_t id, int state,
                                   memos_pending** pending, memos_error* err);
/* Errors: MEMOS_BAD_REQUEST (version 0), MEMOS_NOT_FOUND, MEMOS_CONFLICT. */
MEMOS_API int memos_rollback(memos_client* client, const char* cube, uint64_t id, uint32_t version,
                             memos_item** item, memos_error* err);
MEMOS_API int memos_rollback_send(memos_client* client, const char* cube, uint64_t id,
                                  uint32_t version, memos_pending** pending, memos_error* err);
/* to 0: the latest. Errors: MEMOS_BAD_REQUEST (from 0), MEMOS_NOT_FOUND. */
MEMOS_API int memos_diff(memos_client* client, const char* cube, uint64_t id, uint32_t from,
                         uint32_t to, memos_item_diff** diff, memos_error* err);
MEMOS_API int memos_diff_send(memos_client* client, const char* cube, uint64_t id, uint32_t from,
                              uint32_t to, memos_pending** pending, memos_error* err);

/* ---- snapshots ------------------------------------------------------------------ */

/* Errors: MEMOS_BAD_REQUEST (the tag), MEMOS_NOT_FOUND, MEMOS_ALREADY_EXISTS. */
MEMOS_API int memos_snapshot_create(memos_client* client, const char* cube, const char* tag,
                                    memos_snapshot** snapshot, memos_error* err);
MEMOS_API int memos_snapshot_create_send(memos_client* client, const char* cube, const char* tag,
                                         memos_pending** pending, memos_error* err);
/* Oldest first. Errors: MEMOS_NOT_FOUND. */
MEMOS_API int memos_snapshot_list(memos_client* client, const char* cube,
                                  memos_snapshots** snapshots, memos_error* err);
MEMOS_API int memos_snapshot_list_send(memos_client* client, const char* cube,
                                       memos_pending** pending, memos_error* err);
/* to_tag NULL: now. Errors: MEMOS_BAD_REQUEST, MEMOS_NOT_FOUND. */
MEMOS_API int memos_snapshot_diff(memos_client* client, const char* cube, const char* from_tag,
                                  const char* to_tag, memos_snapshot_changes** changes,
                                  memos_error* err);
MEMOS_API int memos_snapshot_diff_send(memos_client* client, const char* cube, const char* from_tag,
                                       const char* to_tag, memos_pending** pending,
                                       memos_error* err);

/* ---- search ------------------------------------------------------------------------ */

/* Best first. `options` NULL: the defaults. Errors: MEMOS_BAD_REQUEST,
 * MEMOS_TOO_LARGE, MEMOS_NOT_FOUND, MEMOS_UNAVAILABLE, MEMOS_RATE_LIMITED. */
MEMOS_API int memos_search(memos_client* client, const char* cube, const char* query,
                           const memos_search_options* options, memos_hits** hits,
                           memos_error* err);
MEMOS_API int memos_search_send(memos_client* client, const char* cube, const char* query,
                                const memos_search_options* options, memos_pending** pending,
                                memos_error* err);
/* A routed search: hits, the context built from them and each module's run.
 * Errors: as memos_search; MEMOS_BAD_REQUEST for a route that does not
 * parse, a mode or min_score; MEMOS_UNAVAILABLE for a tier memosd cannot run. */
MEMOS_API int memos_search_routed(memos_client* client, const char* cube, const char* query,
                                  const memos_search_options* options, memos_routed_search** routed,
                                  memos_error* err);
MEMOS_API int memos_search_routed_send(memos_client* client, const char* cube, const char* query,
                                       const memos_search_options* options, memos_pending** pending,
                                       memos_error* err);

/* ---- archives and adapters (streamed: blocking only) ----------------------------- */

/* Gets each chunk; returns 0 to go on, anything else to stop. */
typedef int (*memos_write_fn)(void* ctx, const char* data, size_t len);
/* Fills up to `cap` bytes and returns how many; 0 at the end. */
typedef size_t (*memos_read_fn)(void* ctx, char* buf, size_t cap);

/* Streams the cube's archive to `write`; `*bytes` (may be NULL) the total.
 * Errors: MEMOS_NOT_FOUND, MEMOS_CONFLICT, MEMOS_BAD_REQUEST ("stopped by
 * the writer"). */
MEMOS_API int memos_export_cube(memos_client* client, const char* cube, memos_write_fn write,
                                void* ctx, uint64_t* bytes, memos_error* err);
/* Imports an archive as `name` (NULL: the archive's). Nothing is left
 * behind when it fails. Errors: MEMOS_BAD_REQUEST (truncated, corrupt or
 * hostile), MEMOS_ALREADY_EXISTS, MEMOS_STORAGE_FULL, MEMOS_BUSY. */
MEMOS_API int memos_import_cube(memos_client* client, memos_read_fn read, void* ctx,
                                const char* name, memos_cube** cube, memos_error* err);
/* Adds a LoRA adapter's GGUF as the parametric item `name`. Errors: see
 * client.h param_add. */
MEMOS_API int memos_param_add(memos_client* client, const char* cube, const char* name,
                              const void* gguf, size_t len, float scale, const char* description,
                              memos_item** item, memos_error* err);
/* Streams the adapter's GGUF (`version` 0: head); `*version_out` (may be
 * NULL) the version. Errors: MEMOS_NOT_FOUND, MEMOS_BAD_REQUEST. */
MEMOS_API int memos_param_export(memos_client* client, const char* cube, const char* name,
                                 uint32_t version, memos_write_fn write, void* ctx,
                                 uint32_t* version_out, memos_error* err);

/* ---- the parametric tier ------------------------------------------------------------ */

MEMOS_API int memos_param_cvec(memos_client* client, const char* cube, const char* name,
                               const char* positive, const char* negative, float scale,
                               const char* description, memos_item** item, memos_error* err);
MEMOS_API int memos_param_cvec_send(memos_client* client, const char* cube, const char* name,
                                    const char* positive, const char* negative, float scale,
                                    const char* description, memos_pending** pending,
                                    memos_error* err);
MEMOS_API int memos_param_list(memos_client* client, const char* cube, memos_items** adapters,
                               memos_error* err);
MEMOS_API int memos_param_list_send(memos_client* client, const char* cube, memos_pending** pending,
                                    memos_error* err);
MEMOS_API int memos_param_show(memos_client* client, const char* cube, const char* name,
                               uint32_t version, memos_item** item, memos_error* err);
MEMOS_API int memos_param_show_send(memos_client* client, const char* cube, const char* name,
                                    uint32_t version, memos_pending** pending, memos_error* err);
MEMOS_API int memos_param_remove(memos_client* client, const char* cube, const char* name,
                                 memos_item** tombstone, memos_error* err);
MEMOS_API int memos_param_remove_send(memos_client* client, const char* cube, const char* name,
                                      memos_pending** pending, memos_error* err);
/* Errors: see client.h param_distill. */
MEMOS_API int memos_param_distill(memos_client* client, const memos_distill_args* args,
                                  memos_job** job, memos_error* err);
MEMOS_API int memos_param_distill_send(memos_client* client, const memos_distill_args* args,
                                       memos_pending** pending, memos_error* err);

/* ---- jobs ---------------------------------------------------------------------------- */

MEMOS_API int memos_job_list(memos_client* client, memos_jobs** jobs, memos_error* err);
MEMOS_API int memos_job_list_send(memos_client* client, memos_pending** pending, memos_error* err);
/* Errors: MEMOS_NOT_FOUND. */
MEMOS_API int memos_job_show(memos_client* client, uint64_t id, memos_job** job, memos_error* err);
MEMOS_API int memos_job_show_send(memos_client* client, uint64_t id, memos_pending** pending,
                                  memos_error* err);
/* Errors: MEMOS_NOT_FOUND, MEMOS_CONFLICT (finished). */
MEMOS_API int memos_job_cancel(memos_client* client, uint64_t id, memos_job** job,
                               memos_error* err);
MEMOS_API int memos_job_cancel_send(memos_client* client, uint64_t id, memos_pending** pending,
                                    memos_error* err);

/* ---- generation and the activation tier --------------------------------------------- */
/* Each may fail with MEMOS_UNAVAILABLE when memosd has no executor. */

/* `options` NULL: the defaults. Errors: see client.h chat. */
MEMOS_API int memos_chat(memos_client* client, const char* cube, const char* prompt,
                         const memos_chat_options* options, memos_chat_reply** reply,
                         memos_error* err);
MEMOS_API int memos_chat_send(memos_client* client, const char* cube, const char* prompt,
                              const memos_chat_options* options, memos_pending** pending,
                              memos_error* err);
/* memos_chat, streamed: `on_piece` gets each piece in order (on the reader
 * thread, see THREADS) before the reply is ready. */
typedef void (*memos_piece_fn)(void* ctx, const memos_chat_piece* piece);
MEMOS_API int memos_chat_stream(memos_client* client, const char* cube, const char* prompt,
                                const memos_chat_options* options, memos_piece_fn on_piece,
                                void* ctx, memos_chat_reply** reply, memos_error* err);
MEMOS_API int memos_chat_stream_send(memos_client* client, const char* cube, const char* prompt,
                                     const memos_chat_options* options, memos_piece_fn on_piece,
                                     void* ctx, memos_pending** pending, memos_error* err);
/* Exactly one of ids (n_ids > 0) and top (> 0). Errors: see client.h. */
MEMOS_API int memos_kv_prefill(memos_client* client, const char* cube, const uint64_t* ids,
                               size_t n_ids, uint32_t top, memos_activation** activation,
                               memos_error* err);
MEMOS_API int memos_kv_prefill_send(memos_client* client, const char* cube, const uint64_t* ids,
                                    size_t n_ids, uint32_t top, memos_pending** pending,
                                    memos_error* err);
MEMOS_API int memos_kv_list(memos_client* client, const char* cube, memos_activations** activations,
                            memos_error* err);
MEMOS_API int memos_kv_list_send(memos_client* client, const char* cube, memos_pending** pending,
                                 memos_error* err);
MEMOS_API int memos_kv_remove(memos_client* client, const char* cube, uint64_t id,
                              memos_activation** activation, memos_error* err);
MEMOS_API int memos_kv_remove_send(memos_client* client, const char* cube, uint64_t id,
                                   memos_pending** pending, memos_error* err);
MEMOS_API int memos_kv_stats_get(memos_client* client, memos_kv_stats** stats, memos_error* err);
MEMOS_API int memos_kv_stats_get_send(memos_client* client, memos_pending** pending,
                                      memos_error* err);

/* ---- the daemon, plugins, tenants, the scheduler: memos/memos_daemon.h ---------- */

#include "memos/memos_daemon.h" /* memos_status_get, memos_cluster_*, memos_sched_*, ... */

#ifdef __cplusplus
}
#endif

#endif /* MEMOS_MEMOS_H */
