// request_seeds.h — client sessions as the SDK frames them (the schema's
// builders and ipc::encode_frame), the seeds of fuzz_request and
// fuzz_frame_decoder. Item ids and import sessions are written as small
// numbers: fuzz_request maps id n (1..15) to the n-th item its session
// added, and session n to the n-th import it began, since real ids are only
// known once the daemon assigns them.
#pragma once

#include <capnp/message.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "ipc/message.h"
#include "ipc/schema/memos.capnp.h"
#include "memcube/archive.h"
#include "memcube/blob_store.h"

namespace memos::fuzz {

using wire::Request;
using BuildRequest = std::function<void(Request::Builder)>;

inline std::string frame_bytes(const BuildRequest& build, std::uint64_t id) {
  capnp::MallocMessageBuilder message;
  auto request = message.initRoot<Request>();
  request.setId(id);
  build(request);
  auto frame = ipc::encode_frame(message);
  auto bytes = frame.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

// A session: its requests' frames, back to back, as a client sends them.
inline std::string session_bytes(const std::vector<BuildRequest>& requests) {
  std::string out;
  std::uint64_t id = 1;
  for (const auto& build : requests) out += frame_bytes(build, id++);
  return out;
}

inline BuildRequest create_cube(const char* name, const char* retriever = "") {
  return [=](Request::Builder r) {
    auto c = r.initCubeCreate();
    c.setName(name);
    c.setRetriever(retriever);
  };
}

inline BuildRequest add_item(const char* cube, const char* text, const char* tag = "note") {
  return [=](Request::Builder r) {
    auto a = r.initAdd();
    a.setCube(cube);
    a.setText(text);
    a.initTags(1).set(0, tag);
    auto meta = a.initMeta(1);
    meta[0].setKey("source");
    meta[0].setValue("chat");
    a.setImportance(0.5f);
    a.setSessionId("s1");
  };
}

// A real archive of a small cube (the store's own writer).
inline std::string small_archive() {
  store::ArchiveWriter w;
  std::string out;
  w.header(&out);
  store::ArchiveManifest m;
  m.cube_name = "notes";
  m.embedder = "hash-v1";
  m.dimension = 256;
  m.created_at_ms = 1700000000000;
  m.head_version = 3;
  m.exported_at_ms = 1700000100000;
  m.live_items = 1;
  m.default_retriever = "hybrid";
  m.language = "english";
  w.manifest(m, &out);
  store::Item item;
  item.id = (std::uint64_t{1700000000000} << 16) | 1;
  item.text = "the cat sat on the mat";
  item.tags = {"pets"};
  item.meta = {{"source", "chat"}};
  item.created_at_ms = item.recorded_at_ms = 1700000000000;
  item.provenance.writer = 1000;
  item.provenance.session = "s1";
  for (std::uint32_t v = 1; v <= 3; ++v) {
    item.version = v;
    item.cube_version = v;
    if (v == 2) item.text = "the cat sat on the red mat";
    if (v == 3) item.tags.push_back("home");
    w.version(item, &out);
  }
  store::Snapshot snap;
  snap.tag = "v1";
  snap.cube_version = 2;
  snap.created_at_ms = 1700000050000;
  snap.live_items = 1;
  snap.created_by = 1000;
  w.snapshot(snap, &out);
  w.trailer(&out);
  return out;
}

// An archive holding one memory and an adapter distilled from it, its
// file in two pieces (format 3).
inline std::string archive_with_adapter() {
  store::ArchiveWriter w;
  std::string out;
  w.header(&out);
  w.manifest({"tuned", "hash-v1", 256, 1700000000000, 2, 1700000100000, 2, "", ""}, &out);
  store::Item memory;
  memory.id = (std::uint64_t{1700000000000} << 16) | 1;
  memory.version = 1;
  memory.cube_version = 1;
  memory.text = "Maya lives in Lisbon";
  w.version(memory, &out);
  const std::string file = "GGUF adapter bytes, a stand-in the reader does not parse";
  store::Item adapter;
  adapter.id = memory.id + 1;
  adapter.version = 1;
  adapter.cube_version = 2;
  adapter.tier = store::Tier::parametric;
  adapter.text = "adapter style";
  adapter.provenance.sources = {memory.id};
  store::Parametric p;
  p.name = "style";
  p.blob = store::sha256(file);
  p.size = file.size();
  p.origin = "imported";
  adapter.param = p;
  w.blob_piece({p.blob, 0, p.size, std::string_view(file).substr(0, 20)}, &out);
  w.blob_piece({p.blob, 20, p.size, std::string_view(file).substr(20)}, &out);
  w.version(adapter, &out);
  w.trailer(&out);
  return out;
}

// Named sessions covering every area of the protocol.
inline std::vector<std::pair<std::string, std::string>> request_sessions() {
  std::vector<std::pair<std::string, std::string>> out;
  out.emplace_back("status", session_bytes({[](Request::Builder r) { r.setStatus(); },
                                            [](Request::Builder r) { r.setMetrics(); }}));
  out.emplace_back("cubes", session_bytes({
                                create_cube("notes"),
                                create_cube("facts", "lexical"),
                                [](Request::Builder r) { r.setCubeList(); },
                                [](Request::Builder r) { r.initCubeShow().setName("notes"); },
                                [](Request::Builder r) {
                                  auto c = r.initCubeRemove();
                                  c.setName("facts");
                                  c.setForce(true);
                                },
                            }));
  out.emplace_back("items", session_bytes({
                                create_cube("notes"),
                                add_item("notes", "the cat sat on the mat"),
                                add_item("notes", "dogs bark at night", "pets"),
                                [](Request::Builder r) {
                                  auto g = r.initGet();
                                  g.setCube("notes");
                                  g.setItemId(1);
                                },
                                [](Request::Builder r) {
                                  auto u = r.initUpdate();
                                  u.setCube("notes");
                                  u.setItemId(1);
                                  u.setText("the cat sat on the red mat");
                                  u.setReplaceTags(true);
                                  u.initTags(2).set(0, "pets");
                                  u.setSessionId("s2");
                                },
                                [](Request::Builder r) {
                                  auto h = r.initHistory();
                                  h.setCube("notes");
                                  h.setItemId(1);
                                },
                                [](Request::Builder r) {
                                  auto d = r.initDiff();
                                  d.setCube("notes");
                                  d.setItemId(1);
                                  d.setFromVersion(1);
                                },
                                [](Request::Builder r) {
                                  auto s = r.initSetState();
                                  s.setCube("notes");
                                  s.setItemId(2);
                                  s.setState(wire::State::FROZEN);
                                },
                                [](Request::Builder r) {
                                  auto x = r.initRemove();
                                  x.setCube("notes");
                                  x.setItemId(1);
                                },
                                [](Request::Builder r) {
                                  auto b = r.initRollback();
                                  b.setCube("notes");
                                  b.setItemId(1);
                                  b.setVersion(2);
                                },
                            }));
  out.emplace_back("idempotent_add", session_bytes({
                                         create_cube("notes"),
                                         [](Request::Builder r) {
                                           r.setIdempotencyKey("key-1");
                                           auto a = r.initAdd();
                                           a.setCube("notes");
                                           a.setText("once only");
                                           a.setTtlMs(60000);
                                         },
                                         [](Request::Builder r) {
                                           r.setIdempotencyKey("key-1");
                                           auto a = r.initAdd();
                                           a.setCube("notes");
                                           a.setText("once only");
                                           a.setTtlMs(60000);
                                         },
                                     }));
  out.emplace_back("search", session_bytes({
                                 create_cube("notes"),
                                 create_cube("more"),
                                 add_item("notes", "the cat sat on the mat"),
                                 add_item("notes", "a bird sang in the garden", "garden"),
                                 add_item("more", "cats like warm places"),
                                 [](Request::Builder r) {
                                   auto s = r.initSearch();
                                   s.setCube("notes");
                                   s.setQuery("cat");
                                   s.setK(5);
                                 },
                                 [](Request::Builder r) {
                                   auto s = r.initSearch();
                                   s.setCube("notes");
                                   s.setQuery("garden bird");
                                   s.setMode("lexical");
                                   s.initTags(1).set(0, "garden");
                                   s.setExplain(true);
                                 },
                                 [](Request::Builder r) {
                                   auto s = r.initSearch();
                                   s.setCube("notes");
                                   s.setQuery("warm cat");
                                   s.setMode("dense");
                                   s.initCubes(1).set(0, "more");
                                   s.setRecencyWeight(0.5f);
                                   s.setMmrLambda(0.7f);
                                   auto m = s.initMeta(1);
                                   m[0].setKey("source");
                                   m[0].setValue("chat");
                                   s.initStates(1).set(0, wire::State::ACTIVE);
                                   s.setRecordedSinceMs(1);
                                   s.setValidUntilMs(4000000000000);
                                 },
                                 [](Request::Builder r) {
                                   auto s = r.initSearch();
                                   s.setCube("notes");
                                   s.setQuery("what did the cat do last May");
                                   s.setBudget("high");
                                   s.setRoute("expand=mid,compress=mid");
                                   s.setReferenceMs(1690000000000);
                                   s.setContextTokens(64);
                                   s.setExplain(true);
                                 },
                             }));
  out.emplace_back("snapshots",
                   session_bytes({
                       create_cube("notes"),
                       add_item("notes", "first fact"),
                       [](Request::Builder r) {
                         auto s = r.initSnapshotCreate();
                         s.setCube("notes");
                         s.setTag("v1");
                       },
                       add_item("notes", "second fact"),
                       [](Request::Builder r) { r.initSnapshotList().setName("notes"); },
                       [](Request::Builder r) {
                         auto d = r.initSnapshotDiff();
                         d.setCube("notes");
                         d.setFromTag("v1");
                       },
                   }));
  std::string archive = small_archive();
  out.emplace_back("archives",
                   session_bytes({
                       create_cube("notes"),
                       add_item("notes", "exported fact"),
                       [](Request::Builder r) { r.initExportChunk().setCube("notes"); },
                       [](Request::Builder r) { r.initImportBegin().setName("copy"); },
                       [archive](Request::Builder r) {
                         auto c = r.initImportChunk();
                         c.setSession(1);
                         c.setData(kj::arrayPtr(
                             reinterpret_cast<const capnp::byte*>(archive.data()), archive.size()));
                       },
                       [](Request::Builder r) { r.setImportFinish(1); },
                       [](Request::Builder r) { r.initCubeShow().setName("copy"); },
                   }));
  std::string tuned = archive_with_adapter();
  out.emplace_back("archive_with_adapter",
                   session_bytes({
                       [](Request::Builder r) { r.initImportBegin().setName("tuned"); },
                       [tuned](Request::Builder r) {
                         auto c = r.initImportChunk();
                         c.setSession(1);
                         c.setData(kj::arrayPtr(reinterpret_cast<const capnp::byte*>(tuned.data()),
                                                tuned.size()));
                       },
                       [](Request::Builder r) { r.setImportFinish(1); },
                       [](Request::Builder r) { r.initParamList().setName("tuned"); },
                   }));
  out.emplace_back("plugins_and_kv",
                   session_bytes({
                       [](Request::Builder r) { r.setPluginList(); },
                       [](Request::Builder r) { r.setPluginInfo("hash-embedder"); },
                       [](Request::Builder r) { r.setKvStats(); },
                       create_cube("notes"),
                       [](Request::Builder r) { r.initKvList().setName("notes"); },
                       [](Request::Builder r) {
                         auto c = r.initChat();
                         c.setCube("notes");
                         c.setPrompt("what do I know about cats?");
                         c.setK(3);
                       },
                       [](Request::Builder r) {
                         auto p = r.initKvPrefill();
                         p.setCube("notes");
                         p.setTop(2);
                       },
                   }));
  return out;
}

}  // namespace memos::fuzz
