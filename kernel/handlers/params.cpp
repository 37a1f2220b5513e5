// The parametric tier's requests (params.h).
#include "kernel/handlers/params.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kernel/cube_access.h"
#include "kernel/handlers/item_write.h"
#include "kernel/handlers/param_write.h"
#include "kernel/plugin_executor.h"
#include "kernel/policy_use.h"
#include "kernel/request_checks.h"
#include "kernel/serial_lane.h"

namespace memos::kernel {
namespace {

constexpr std::size_t kExportChunkBytes = 1u << 20;

std::string mib(std::uint64_t bytes) {
  return std::to_string((bytes + (1u << 20) - 1) >> 20) + " MiB";
}

// The head of the cube's adapter `name`, or a version of it; a removed one
// only at an earlier version. Errors: not_found, the store's.
Status find_adapter(const store::ReadTxn& txn, const store::Cube& cube, const std::string& name,
                    std::uint32_t version, store::Item* out) {
  if (store::Status st = txn.find_param(cube.id, name, out); !st.ok()) return Status::from(st);
  if (version != 0 && version != out->version) {
    store::Status st = txn.get_item(cube.id, out->id, version, out);
    if (st.code == store::Errc::not_found) {
      return Status::not_found("adapter '" + name + "' has no version " + std::to_string(version));
    }
    if (!st.ok()) return Status::from(st);
  }
  if (out->deleted()) {
    return Status::not_found("adapter '" + name + "' was removed" +
                             (version != 0 ? "" : " (param show --version shows its history)"));
  }
  return {};
}

// find_adapter in the cube the client names, which it may read. Worker
// thread. Errors: open_cube's, find_adapter's.
Status read_adapter(const Services& s, const RequestContext& ctx, const std::string& cube_name,
                    const std::string& name, std::uint32_t version, store::Item* out) {
  std::optional<store::ReadTxn> txn;
  store::Cube cube;
  if (Status st = open_cube(s, ctx, cube_name, CubeUse::read, &txn, &cube); !st.ok()) return st;
  return find_adapter(*txn, cube, name, version, out);
}

void list(const Services& s, const RequestContext& ctx, std::string cube_name) {
  s.run_on_worker([&s, ctx, cube_name = std::move(cube_name)] {
    std::optional<store::ReadTxn> txn;
    store::Cube cube;
    if (Status st = open_cube(s, ctx, cube_name, CubeUse::read, &txn, &cube); !st.ok())
      return ctx.fail(st);
    std::vector<store::Item> params;
    if (store::Status st = txn->list_params(cube.id, &params); !st.ok())
      return ctx.fail(Status::from(st));
    ctx.respond([&](wire::Response::Builder r) {
      auto out = r.initParams(static_cast<unsigned>(params.size()));
      for (unsigned i = 0; i < out.size(); ++i) set_item(out[i], params[i]);
    });
  });
}

void show(const Services& s, const RequestContext& ctx, wire::ParamRef::Reader args) {
  s.run_on_worker([&s, ctx, cube_name = exact(args.getCube()), name = exact(args.getName()),
                   version = args.getVersion()] {
    store::Item item;
    if (Status st = read_adapter(s, ctx, cube_name, name, version, &item); !st.ok())
      return ctx.fail(st);
    ctx.respond_item(item);
  });
}

// A chunk of the adapter's file; the client checks the whole against the
// digest paramShow gives.
void export_chunk(const Services& s, const RequestContext& ctx, wire::ParamRef::Reader args) {
  if (!s.blobs) return ctx.fail(Status::unavailable("this memosd has no blob store", false));
  s.run_on_worker([&s, ctx, cube_name = exact(args.getCube()), name = exact(args.getName()),
                   version = args.getVersion(), offset = args.getOffset()] {
    store::Item item;
    if (Status st = read_adapter(s, ctx, cube_name, name, version, &item); !st.ok())
      return ctx.fail(st);
    const store::Parametric& p = *item.param;
    if (offset > p.size) {
      return ctx.fail(Status::bad_request("offset " + std::to_string(offset) + " is past the " +
                                          std::to_string(p.size) + " bytes of the adapter"));
    }
    std::string chunk(
        static_cast<std::size_t>(std::min<std::uint64_t>(kExportChunkBytes, p.size - offset)),
        '\0');
    // Another node's adapter (cluster mode) comes from the cluster's bucket.
    if (store::Status st = s.blobs->make_local(p.blob, p.size); !st.ok()) {
      return ctx.fail(Status::from(st).prefixed("the adapter's file"));
    }
    std::ifstream in(s.blobs->path(p.blob), std::ios::binary);
    in.seekg(static_cast<std::streamoff>(offset));
    if (!in || !in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()))) {
      return ctx.fail(Status::internal("the adapter's file cannot be read"));
    }
    ctx.respond([&](wire::Response::Builder r) {
      auto b = r.initParamBytes();
      b.setData(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(chunk.data()), chunk.size()));
      b.setTotal(p.size);
      b.setVersion(item.version);
    });
  });
}

void remove(const Services& s, const RequestContext& ctx, wire::ParamRef::Reader args) {
  ItemWrite w;
  w.cube = exact(args.getCube());
  std::string name = exact(args.getName());
  if (Status st = check_adapter_name(name); !st.ok()) return ctx.fail(st);
  const store::TenantId writer = ctx.tenant;
  w.apply = [name, writer](store::WriteTxn& txn, const store::Cube& cube, store::Item* written,
                           store::Item*) {
    store::Item head;
    if (store::Status st = txn.reader().find_param(cube.id, name, &head); !st.ok()) return st;
    if (head.deleted()) {
      return store::Status{store::Errc::not_found, "adapter '" + name + "' was removed already"};
    }
    return txn.remove_item(cube.id, head.id, writer, now_ms(), written);
  };
  commit_item_write(s, ctx, std::move(w));
}

constexpr std::size_t kMaxControlTexts = 256;

// paramCvec: the tagged memories (worker), the vector and its check (the
// executor lane), the item (the item path).
void control_vector(const Services& s, const RequestContext& ctx, wire::ParamCvec::Reader args) {
  struct Work {
    std::string cube, name, positive, negative, description;
    float scale = 1;
    std::vector<std::string> pos, neg;
    std::vector<store::ItemId> sources;
  };
  auto w = std::make_shared<Work>();
  w->cube = exact(args.getCube());
  w->name = exact(args.getName());
  w->positive = exact(args.getPositive());
  w->negative = exact(args.getNegative());
  w->description = exact(args.getDescription());
  w->scale = args.getScale() == 0 ? 1 : args.getScale();
  if (Status st = check_new_param(s, ctx, w->cube, w->name, w->scale, w->description); !st.ok())
    return ctx.fail(st);
  if (w->positive.empty() || w->negative.empty() || w->positive == w->negative) {
    return ctx.fail(Status::bad_request("name two different tags: --positive and --negative"));
  }
  if (Status st = check_tags({w->positive, w->negative}, s.config.store); !st.ok())
    return ctx.fail(st);
  s.run_on_worker([&s, ctx, w] {
    std::optional<store::ReadTxn> txn;
    store::Cube cube;
    if (Status st = open_cube(s, ctx, w->cube, CubeUse::write, &txn, &cube); !st.ok())
      return ctx.fail(st);
    struct Tagged {
      store::ItemId id;
      std::string text;
    };
    std::vector<Tagged> pos, neg;
    store::Status st = txn->for_each_live_item(cube.id, [&](const store::Item& it) {
      if (it.tier != store::Tier::plaintext || it.state != store::State::active) return;
      const auto has = [&](const std::string& tag) {
        return std::find(it.tags.begin(), it.tags.end(), tag) != it.tags.end();
      };
      if (has(w->positive)) pos.push_back({it.id, it.text});
      if (has(w->negative)) neg.push_back({it.id, it.text});
    });
    if (!st.ok()) return ctx.fail(Status::from(st));
    txn.reset();
    for (auto* side : {&pos, &neg}) {
      if (side->empty()) {
        return ctx.fail(Status::not_found("no active memory of the cube is tagged '" +
                                          (side == &pos ? w->positive : w->negative) + "'"));
      }
      // The newest (ids are time-ordered), a bounded number.
      if (side->size() > kMaxControlTexts) {
        side->erase(side->begin(), side->end() - static_cast<std::ptrdiff_t>(kMaxControlTexts));
      }
    }
    for (auto& t : pos) {
      w->pos.push_back(std::move(t.text));
      w->sources.push_back(t.id);
    }
    for (auto& t : neg) {
      w->neg.push_back(std::move(t.text));
      w->sources.push_back(t.id);
    }
    s.executor_lane.post([&s, ctx, w](bool stopping) {
      if (stopping) return ctx.fail(Status::unavailable("memosd is stopping"));
      std::string gguf;
      if (Status made = s.executor->control_vector(w->pos, w->neg, &gguf); !made.ok())
        return ctx.fail(made);
      store::BlobId blob;
      if (store::Status put = s.blobs->put(gguf, &blob); !put.ok())
        return ctx.fail(Status::from(put));
      AdapterRef ref{s.blobs->path(blob), blob, gguf.size(), 1, "cvec"};
      AdapterFacts facts;
      if (Status checked = s.executor->check_adapter(ref, &facts); !checked.ok())
        return ctx.fail(checked);
      std::string text = w->description.empty()
                             ? describe(w->name, facts, s.executor->info().model) + ", from " +
                                   std::to_string(w->pos.size()) + " memories tagged " +
                                   w->positive + " against " + std::to_string(w->neg.size()) +
                                   " tagged " + w->negative
                             : w->description;
      commit_param(s, ctx, w->cube,
                   parametric_item(facts, ref, w->name, w->scale,
                                   "derived: +" + w->positive + " -" + w->negative),
                   std::move(text), w->sources);
    });
  });
}

}  // namespace

struct ParamUploads::Upload {
  std::uint64_t id = 0;
  std::uint64_t connection = 0;
  std::string cube, name, description;
  float scale = 1;
  std::string bytes;
};

void ParamUploads::add(const RequestContext& ctx, wire::ParamAdd::Reader args) {
  std::shared_ptr<Upload> up;
  const std::uint64_t limit = std::min<std::uint64_t>(
      s_.config.store.max_adapter_mb << 20,
      ctx.policy->parametric_max_mb ? *ctx.policy->parametric_max_mb << 20 : UINT64_MAX);
  {
    std::lock_guard lock(mutex_);
    if (args.getUpload() == 0) {
      auto fresh = std::make_shared<Upload>();
      fresh->connection = ctx.connection;
      fresh->cube = exact(args.getCube());
      fresh->name = exact(args.getName());
      fresh->description = exact(args.getDescription());
      fresh->scale = args.getScale() == 0 ? 1 : args.getScale();
      if (Status st =
              check_new_param(s_, ctx, fresh->cube, fresh->name, fresh->scale, fresh->description);
          !st.ok()) {
        return ctx.fail(st);
      }
      const auto open = std::count_if(uploads_.begin(), uploads_.end(), [&](const auto& u) {
        return u.second->connection == ctx.connection;
      });
      if (static_cast<std::size_t>(open) >= kMaxUploadsPerConnection) {
        return ctx.fail(Status::conflict("this connection has " + std::to_string(open) +
                                         " adapter uploads open; finish one first"));
      }
      fresh->id = next_upload_++;
      up = fresh;
      uploads_[up->id] = up;
    } else {
      auto it = uploads_.find(args.getUpload());
      if (it == uploads_.end() || it->second->connection != ctx.connection) {
        return ctx.fail(Status::not_found("no adapter upload " + std::to_string(args.getUpload()) +
                                          " on this connection"));
      }
      up = it->second;
    }
    auto data = args.getData();
    if (up->bytes.size() + data.size() > limit) {
      uploads_.erase(up->id);
      const bool quota =
          ctx.policy->parametric_max_mb &&
          (*ctx.policy->parametric_max_mb << 20) < (s_.config.store.max_adapter_mb << 20);
      const std::string what = "the adapter is over " + mib(limit) +
                               (quota ? " (parametric.max_mb)" : " (store.max_adapter_mb)");
      return ctx.fail(quota ? Status{Code::quota_exceeded, what, false} : Status::too_large(what));
    }
    up->bytes.append(reinterpret_cast<const char*>(data.begin()), data.size());
    if (args.getMore()) {
      return ctx.respond([&](wire::Response::Builder r) { r.setParamUpload(up->id); });
    }
    uploads_.erase(up->id);
  }
  if (up->bytes.empty()) return ctx.fail(Status::bad_request("the adapter file is empty"));
  finish(ctx, std::move(up));
}

void ParamUploads::finish(const RequestContext& ctx, std::shared_ptr<Upload> up) {
  const Services& s = s_;
  s.run_on_worker([&s, ctx, up] {
    // Durable before anything references it; a refusal below leaves it to
    // the blob store's garbage collection.
    store::BlobId blob;
    if (store::Status st = s.blobs->put(up->bytes, &blob); !st.ok())
      return ctx.fail(Status::from(st));
    AdapterRef ref{s.blobs->path(blob), blob, up->bytes.size(), 1};
    std::string().swap(up->bytes);
    s.executor_lane.post([&s, ctx, up, ref](bool stopping) {
      if (stopping) return ctx.fail(Status::unavailable("memosd is stopping"));
      AdapterFacts facts;
      if (Status st = s.executor->check_adapter(ref, &facts); !st.ok()) return ctx.fail(st);
      std::string text = up->description.empty()
                             ? describe(up->name, facts, s.executor->info().model)
                             : up->description;
      commit_param(s, ctx, up->cube, parametric_item(facts, ref, up->name, up->scale, "imported"),
                   std::move(text), {});
    });
  });
}

void ParamUploads::connection_closed(std::uint64_t connection) {
  std::lock_guard lock(mutex_);
  std::erase_if(uploads_, [&](const auto& u) { return u.second->connection == connection; });
}

void ParamUploads::add_handlers(DispatchTable& table) {
  using R = wire::Request;
  const Services& s = s_;
  table.add(R::PARAM_ADD,
            [this](const RequestContext& c, R::Reader r) { add(c, r.getParamAdd()); });
  table.add(R::PARAM_LIST, [&s](const RequestContext& c, R::Reader r) {
    list(s, c, exact(r.getParamList().getName()));
  });
  table.add(R::PARAM_SHOW,
            [&s](const RequestContext& c, R::Reader r) { show(s, c, r.getParamShow()); });
  table.add(R::PARAM_REMOVE,
            [&s](const RequestContext& c, R::Reader r) { remove(s, c, r.getParamRemove()); });
  table.add(R::PARAM_CVEC,
            [&s](const RequestContext& c, R::Reader r) { control_vector(s, c, r.getParamCvec()); });
  table.add(R::PARAM_EXPORT,
            [&s](const RequestContext& c, R::Reader r) { export_chunk(s, c, r.getParamExport()); });
}

}  // namespace memos::kernel
