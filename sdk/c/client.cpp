// sdk/c/client.cpp — the C API's connections, pendings and errors, and its
// small helpers (the version, error names, item ids).
#include <cstdio>
#include <cstring>

#include "sdk/c/call.h"

namespace memos::c_api {

int fail(memos_error* err, int code, std::string_view message, bool retryable,
         std::uint32_t retry_after_ms) {
  if (err == nullptr) return code;
  err->code = code;
  err->retryable = retryable;
  err->retry_after_ms = retry_after_ms;
  try {
    err->message = Arena::make_string(message);
  } catch (const std::bad_alloc&) {
    err->message = nullptr;  // memos.h: NULL only when out of memory
  }
  return code;
}

int fail(memos_error* err, const Error& error) {
  // memos::ErrorCode and enum memos_code list the codes in one order, the
  // C one from 1 (0 is MEMOS_OK).
  static_assert(static_cast<int>(ErrorCode::bad_request) + 1 == MEMOS_BAD_REQUEST);
  static_assert(static_cast<int>(ErrorCode::protocol_error) + 1 == MEMOS_PROTOCOL_ERROR);
  return fail(err, static_cast<int>(error.code) + 1, error.message, error.retryable,
              error.retry_after_ms);
}

memos::Client& client_of(memos_client* client) {
  if (client == nullptr || !client->client) throw BadArgument("client: NULL");
  return *client->client;
}

}  // namespace memos::c_api

using namespace memos::c_api;

extern "C" {

#define MEMOS_STRINGIFY(x) #x
#define MEMOS_VERSION_TEXT(a, b, c) MEMOS_STRINGIFY(a) "." MEMOS_STRINGIFY(b) "." MEMOS_STRINGIFY(c)
const char* memos_version(void) {
  return MEMOS_VERSION_TEXT(MEMOS_VERSION_MAJOR, MEMOS_VERSION_MINOR, MEMOS_VERSION_PATCH);
}

const char* memos_strerror(int code) {
  if (code == MEMOS_OK) return "ok";
  if (code == MEMOS_NO_MEMORY) return "noMemory";
  if (code < MEMOS_BAD_REQUEST || code > MEMOS_PROTOCOL_ERROR) return "unknown";
  return memos::to_string(static_cast<memos::ErrorCode>(code - 1));
}

char* memos_default_socket(void) {
  try {
    return Arena::make_string(memos::default_socket());
  } catch (...) {
    return nullptr;
  }
}

int memos_connect(const char* socket_path, const memos_client_options* options,
                  memos_client** client, memos_error* err) {
  return guarded(err, [&]() -> int {
    if (client == nullptr) throw BadArgument("client: NULL");
    auto connected = memos::Client::connect(text(socket_path), client_options(options));
    if (!connected) return fail(err, connected.error());
    *client = new memos_client{std::move(*connected)};
    return MEMOS_OK;
  });
}

void memos_close(memos_client* client) {
  delete client;
}

size_t memos_in_flight(const memos_client* client) {
  return client == nullptr || !client->client ? 0 : client->client->in_flight();
}

int memos_wait(memos_pending* pending, void* result, memos_error* err) {
  if (pending == nullptr) return fail(err, MEMOS_BAD_REQUEST, "pending: NULL");
  int code = guarded(err, [&] { return pending->reply->wait(result, err); });
  memos_free(pending);
  return code;
}

int memos_ready(const memos_pending* pending) {
  return pending != nullptr && pending->reply->ready() ? 1 : 0;
}

void memos_format_id(uint64_t id, char buf[MEMOS_ID_TEXT_SIZE]) {
  std::string text;
  try {
    text = memos::format_id(id);
  } catch (...) {
  }
  std::snprintf(buf, MEMOS_ID_TEXT_SIZE, "%s", text.c_str());
}

int memos_parse_id(const char* text, uint64_t* id) {
  if (text == nullptr || id == nullptr) return MEMOS_BAD_REQUEST;
  auto parsed = memos::parse_id(text);
  if (!parsed) return MEMOS_BAD_REQUEST;
  *id = *parsed;
  return MEMOS_OK;
}

}  // extern "C"
