// sdk/params.cpp — Client's calls on the parametric tier: param_add (an
// upload over as many requests as the file takes), param_list, param_show,
// param_remove and param_export (a download likewise), param_distill and
// the jobs that follow it (job_list, job_show, job_cancel). Each request is
// an ordinary Impl::call.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "memos/client.h"
#include "sdk/client_impl.h"
#include "sdk/reply_decode.h"
#include "sdk/wire_text.h"

namespace memos {

using sdk::decode_item;
using sdk::ReplyReader;
using sdk::text;
using sdk::to_item;
using sdk::wrong_reply;

namespace {

constexpr std::size_t kUploadChunkBytes = 4u << 20;

capnp::Data::Reader bytes_of(std::string_view data) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(data.data()), data.size());
}

void set_ref(wire::ParamRef::Builder b, const std::string& cube, const std::string& name,
             std::uint32_t version, std::uint64_t offset = 0) {
  b.setCube(text(cube));
  b.setName(text(name));
  b.setVersion(version);
  b.setOffset(offset);
}

Job to_job(wire::Job::Reader j) {
  Job out;
  out.id = j.getId();
  out.kind = j.getKind();
  out.cube = j.getCube();
  out.name = j.getName();
  out.state = j.getState();
  out.done = j.getDone();
  out.total = j.getTotal();
  out.loss = j.getLoss();
  out.message = j.getMessage();
  out.created_at_ms = j.getCreatedAtMs();
  out.started_at_ms = j.getStartedAtMs();
  out.finished_at_ms = j.getFinishedAtMs();
  out.item = j.getItemId();
  out.version = j.getVersion();
  out.memories = j.getMemories();
  out.tokens = j.getTokens();
  return out;
}

Result<Job> decode_job(const wire::Response::Reader& r) {
  if (!r.isJob()) return wrong_reply<Job>();
  return to_job(r.getJob());
}

}  // namespace

Result<Item> Client::param_add(const std::string& cube, const std::string& name,
                               std::string_view gguf, float scale, const std::string& description) {
  std::uint64_t upload = 0;
  std::size_t at = 0;
  for (;;) {
    const std::size_t n = std::min(kUploadChunkBytes, gguf.size() - at);
    const bool more = at + n < gguf.size();
    auto fill = [&](wire::Request::Builder r) {
      auto a = r.initParamAdd();
      a.setCube(text(cube));
      a.setName(text(name));
      a.setUpload(upload);
      a.setData(bytes_of(gguf.substr(at, n)));
      a.setMore(more);
      a.setScale(scale);
      a.setDescription(text(description));
    };
    if (!more) return impl_->call<Item>(fill, decode_item).get();
    auto next =
        impl_
            ->call<std::uint64_t>(fill,
                                  [](const wire::Response::Reader& r) -> Result<std::uint64_t> {
                                    if (!r.isParamUpload()) return wrong_reply<std::uint64_t>();
                                    return r.getParamUpload();
                                  })
            .get();
    if (!next) return next.error();
    upload = *next;
    at += n;
  }
}

std::future<Result<Item>> Client::param_cvec_async(std::string cube, std::string name,
                                                   std::string positive, std::string negative,
                                                   float scale, std::string description) {
  return impl_->call<Item>(
      [&](wire::Request::Builder r) {
        auto c = r.initParamCvec();
        c.setCube(text(cube));
        c.setName(text(name));
        c.setPositive(text(positive));
        c.setNegative(text(negative));
        c.setScale(scale);
        c.setDescription(text(description));
      },
      decode_item);
}

std::future<Result<std::vector<Item>>> Client::param_list_async(std::string cube) {
  return impl_->call<std::vector<Item>>(
      [&](wire::Request::Builder r) { r.initParamList().setName(text(cube)); },
      [](const wire::Response::Reader& r) -> Result<std::vector<Item>> {
        if (!r.isParams()) return wrong_reply<std::vector<Item>>();
        ReplyReader in;
        std::vector<Item> out;
        for (auto i : r.getParams()) out.push_back(to_item(in, i));
        return in.finish(std::move(out));
      });
}

std::future<Result<Item>> Client::param_show_async(std::string cube, std::string name,
                                                   std::uint32_t version) {
  return impl_->call<Item>(
      [&](wire::Request::Builder r) { set_ref(r.initParamShow(), cube, name, version); },
      decode_item);
}

std::future<Result<Item>> Client::param_remove_async(std::string cube, std::string name) {
  return impl_->call<Item>(
      [&](wire::Request::Builder r) { set_ref(r.initParamRemove(), cube, name, 0); }, decode_item);
}

Result<std::uint32_t> Client::param_export(const std::string& cube, const std::string& name,
                                           std::uint32_t version,
                                           const std::function<bool(std::string_view)>& write) {
  struct Chunk {
    std::string data;
    std::uint64_t total = 0;
    std::uint32_t version = 0;
  };
  std::uint64_t offset = 0;
  for (;;) {
    auto r = impl_
                 ->call<Chunk>(
                     [&](wire::Request::Builder req) {
                       set_ref(req.initParamExport(), cube, name, version, offset);
                     },
                     [](const wire::Response::Reader& resp) -> Result<Chunk> {
                       if (!resp.isParamBytes()) return wrong_reply<Chunk>();
                       auto b = resp.getParamBytes();
                       auto data = b.getData();
                       return Chunk{
                           std::string(reinterpret_cast<const char*>(data.begin()), data.size()),
                           b.getTotal(), b.getVersion()};
                     })
                 .get();
    if (!r) return r.error();
    // The first chunk names the version; the rest ask for that one, so a
    // version added meanwhile does not mix in.
    version = r->version;
    if (!write(r->data)) return Error{ErrorCode::bad_request, "stopped by the writer", false};
    offset += r->data.size();
    if (offset >= r->total || r->data.empty()) return version;
  }
}

std::future<Result<Job>> Client::param_distill_async(DistillArgs args) {
  return impl_->call<Job>(
      [&](wire::Request::Builder r) {
        auto d = r.initParamDistill();
        d.setCube(text(args.cube));
        d.setName(text(args.name));
        d.setTag(text(args.tag));
        auto ids = d.initIds(static_cast<unsigned>(args.ids.size()));
        for (unsigned i = 0; i < ids.size(); ++i) ids.set(i, args.ids[i]);
        d.setRank(args.rank);
        d.setSteps(args.steps);
        d.setScale(args.scale);
        d.setDescription(text(args.description));
      },
      decode_job);
}

std::future<Result<std::vector<Job>>> Client::job_list_async() {
  return impl_->call<std::vector<Job>>(
      [](wire::Request::Builder r) { r.setJobList(); },
      [](const wire::Response::Reader& r) -> Result<std::vector<Job>> {
        if (!r.isJobs()) return wrong_reply<std::vector<Job>>();
        std::vector<Job> out;
        for (auto j : r.getJobs()) out.push_back(to_job(j));
        return out;
      });
}

std::future<Result<Job>> Client::job_show_async(std::uint64_t id) {
  return impl_->call<Job>([id](wire::Request::Builder r) { r.setJobShow(id); }, decode_job);
}

std::future<Result<Job>> Client::job_cancel_async(std::uint64_t id) {
  return impl_->call<Job>([id](wire::Request::Builder r) { r.setJobCancel(id); }, decode_job);
}

}  // namespace memos
