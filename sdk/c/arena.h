// sdk/c/arena.h — the memory of what the C API hands out (memos.h,
// OWNERSHIP).
//
// Every result, error message, string and memos_pending the C API returns is
// the root of one Arena: a bump allocator whose chunks hold the root and
// every string and array it points to, so the caller frees it all with one
// memos_free(). The root is preceded by a Prefix naming its Arena; memos_free
// reads it (and checks its magic, so a pointer the library did not hand out
// is caught in debug builds rather than freed).
//
// An Arena may also own C++ objects (adopt()): a memos_pending owns the
// future of its reply, destroyed with it.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "memos/memos.h"

namespace memos::c_api {

class Arena {
 public:
  Arena() = default;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // A new Arena whose root is a zeroed T, returned (the Arena is owned by
  // it from now on: memos_free(root) deletes it). Throws std::bad_alloc.
  template <class T>
  static T* make_root(Arena** arena_out = nullptr) {
    auto arena = std::make_unique<Arena>();
    void* root = arena->root_bytes(sizeof(T));
    if (arena_out != nullptr) *arena_out = arena.get();
    arena.release();  // owned through the root's prefix
    return static_cast<T*>(root);
  }
  // A new Arena whose root is a NUL-terminated copy of `text`. Throws
  // std::bad_alloc.
  static char* make_string(std::string_view text);
  // The Arena behind a root this library handed out; nullptr for a pointer
  // it did not.
  static Arena* of_root(void* root);

  // Zeroed, aligned for any of the C API's structs.
  void* bytes(std::size_t size);
  template <class T>
  T* array(std::size_t n) {
    return n == 0 ? nullptr : static_cast<T*>(bytes(sizeof(T) * n));
  }
  // A copy of `text`, NUL-terminated.
  memos_str str(std::string_view text);

  // Keeps `object` until the Arena is freed.
  template <class T>
  T* adopt(std::unique_ptr<T> object) {
    T* raw = object.get();
    owned_.push_back(std::unique_ptr<void, void (*)(void*)>(
        object.release(), [](void* p) { delete static_cast<T*>(p); }));
    return raw;
  }

 private:
  void* root_bytes(std::size_t size);

  std::vector<std::unique_ptr<std::max_align_t[]>> chunks_;
  std::size_t used_ = 0;      // of the last chunk, in bytes
  std::size_t capacity_ = 0;  // of the last chunk, in bytes
  std::vector<std::unique_ptr<void, void (*)(void*)>> owned_;
};

}  // namespace memos::c_api
