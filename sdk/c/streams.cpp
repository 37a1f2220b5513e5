// sdk/c/streams.cpp — the calls that stream over many requests (archives,
// adapters' files): blocking only, as in the C++ SDK, with C callbacks.
#include <cstdint>
#include <string_view>

#include "sdk/c/call.h"

using namespace memos::c_api;

namespace {

std::function<bool(std::string_view)> writer(memos_write_fn write, void* ctx) {
  if (write == nullptr) throw BadArgument("write: NULL");
  return
      [write, ctx](std::string_view chunk) { return write(ctx, chunk.data(), chunk.size()) == 0; };
}

// Stores `result`'s value through `store`, or fills `err`.
template <class T, class Store>
int finish(const memos::Result<T>& result, memos_error* err, Store&& store) {
  if (!result) return fail(err, result.error());
  store(*result);
  return MEMOS_OK;
}

}  // namespace

extern "C" {

int memos_export_cube(memos_client* client, const char* cube, memos_write_fn write, void* ctx,
                      uint64_t* bytes, memos_error* err) {
  return guarded(err, [&]() -> int {
    auto result = client_of(client).export_cube(text(cube), writer(write, ctx));
    return finish(result, err, [&](std::uint64_t n) {
      if (bytes != nullptr) *bytes = n;
    });
  });
}

int memos_import_cube(memos_client* client, memos_read_fn read, void* ctx, const char* name,
                      memos_cube** cube, memos_error* err) {
  return guarded(err, [&]() -> int {
    if (read == nullptr) throw BadArgument("read: NULL");
    auto result = client_of(client).import_cube(
        [read, ctx](char* buf, std::size_t cap) { return read(ctx, buf, cap); }, text(name));
    return finish(result, err, [&](const memos::Cube& c) {
      if (cube != nullptr) *cube = to_c<memos_cube>(c);
    });
  });
}

int memos_param_add(memos_client* client, const char* cube, const char* name, const void* gguf,
                    size_t len, float scale, const char* description, memos_item** item,
                    memos_error* err) {
  return guarded(err, [&]() -> int {
    if (gguf == nullptr && len != 0) throw BadArgument("gguf: NULL with a non-zero length");
    std::string_view file(static_cast<const char*>(gguf), gguf == nullptr ? 0 : len);
    auto result =
        client_of(client).param_add(text(cube), text(name), file, scale, text(description));
    return finish(result, err, [&](const memos::Item& i) {
      if (item != nullptr) *item = to_c<memos_item>(i);
    });
  });
}

int memos_param_export(memos_client* client, const char* cube, const char* name, uint32_t version,
                       memos_write_fn write, void* ctx, uint32_t* version_out, memos_error* err) {
  return guarded(err, [&]() -> int {
    auto result =
        client_of(client).param_export(text(cube), text(name), version, writer(write, ctx));
    return finish(result, err, [&](std::uint32_t v) {
      if (version_out != nullptr) *version_out = v;
    });
  });
}

}  // extern "C"
