// faiss_io.h — faiss::write_index into a snapshot being written, and
// faiss::read_index from a mapped one, with no copy of the whole index in
// between (FAISS's own VectorIOWriter/Reader hold one).
#pragma once

#include <faiss/impl/io.h>

#include <cstddef>

#include "plugins/faiss-retriever/mapped_file.h"

namespace memos::faiss_retriever {

// Hands what FAISS writes to `sink` (a DurableFile; or a counter, to learn
// the length before writing). FAISS writes each array in one call, from
// the index's own memory. A failed sink is reported as a short write,
// which FAISS turns into a faiss::FaissException.
template <class Sink>
class SinkIOWriter final : public faiss::IOWriter {
 public:
  explicit SinkIOWriter(Sink& sink) : sink_(sink) { name = "snapshot"; }
  size_t operator()(const void* ptr, size_t size, size_t nitems) override {
    sink_.append(ptr, size * nitems);
    return sink_.error().empty() ? nitems : 0;
  }

 private:
  Sink& sink_;
};

// Reads `size` bytes of `file` from `offset` for FAISS, as VectorIOReader
// reads its vector (a short count at the end), copying them straight into
// the index's arrays and giving the mapped pages back behind it.
class MappedIOReader final : public faiss::IOReader {
 public:
  MappedIOReader(const MappedFile& file, std::size_t offset, std::size_t size);
  size_t operator()(void* ptr, size_t size, size_t nitems) override;

 private:
  const MappedFile& file_;
  std::size_t position_;  // offsets into the file
  std::size_t end_;
  std::size_t released_;  // pages before this were given back
};

}  // namespace memos::faiss_retriever
