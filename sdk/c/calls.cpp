// sdk/c/calls.cpp — every request of memos.h: its _send form starts the
// C++ SDK's call through send() (sdk/c/call.h), its blocking form is that
// send then memos_wait. The streamed calls are sdk/c/streams.cpp.
#include <cstdint>

#include "sdk/c/call.h"

using namespace memos::c_api;

namespace {

// A chat's pieces to the caller's callback, on the reader thread.
memos::Client::ChatPieceHandler piece_handler(memos_piece_fn on_piece, void* ctx) {
  if (on_piece == nullptr) throw BadArgument("on_piece: NULL");
  return [on_piece, ctx](const memos::ChatPiece& piece) {
    memos_chat_piece c{
        {piece.text.c_str(), piece.text.size()}, piece.prefill_done, piece.prefill_total};
    on_piece(ctx, &c);
  };
}

}  // namespace

extern "C" {

int memos_status_get_send(memos_client* client, memos_pending** pending, memos_error* err) {
  return send<memos_status>(client, pending, err,
                            [&](memos::Client& k) { return k.status_async(); });
}

int memos_status_get(memos_client* client, memos_status** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_status_get_send(client, &p, err), &p, result, err);
}

int memos_metrics_send(memos_client* client, memos_pending** pending, memos_error* err) {
  return send<memos_str>(client, pending, err, [&](memos::Client& k) { return k.metrics_async(); });
}

int memos_metrics(memos_client* client, memos_str** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_metrics_send(client, &p, err), &p, result, err);
}

int memos_cluster_status_get_send(memos_client* client, memos_pending** pending, memos_error* err) {
  return send<memos_cluster_status>(client, pending, err,
                                    [&](memos::Client& k) { return k.cluster_status_async(); });
}

int memos_cluster_status_get(memos_client* client, memos_cluster_status** result,
                             memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_cluster_status_get_send(client, &p, err), &p, result, err);
}

int memos_cluster_step_down_send(memos_client* client, memos_pending** pending, memos_error* err) {
  return send<memos_cluster_status>(client, pending, err,
                                    [&](memos::Client& k) { return k.cluster_step_down_async(); });
}

int memos_cluster_step_down(memos_client* client, memos_cluster_status** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_cluster_step_down_send(client, &p, err), &p, result, err);
}

int memos_cube_create_send(memos_client* client, const char* name, int retriever,
                           const char* language, memos_pending** pending, memos_error* err) {
  return send<memos_cube>(client, pending, err, [&](memos::Client& k) {
    return k.cube_create_async(text(name), search_mode(retriever, "retriever"), text(language));
  });
}

int memos_cube_create(memos_client* client, const char* name, int retriever, const char* language,
                      memos_cube** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_cube_create_send(client, name, retriever, language, &p, err), &p, result,
                  err);
}

int memos_cube_list_send(memos_client* client, memos_pending** pending, memos_error* err) {
  return send<memos_cubes>(client, pending, err,
                           [&](memos::Client& k) { return k.cube_list_async(); });
}

int memos_cube_list(memos_client* client, memos_cubes** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_cube_list_send(client, &p, err), &p, result, err);
}

int memos_cube_show_send(memos_client* client, const char* name, memos_pending** pending,
                         memos_error* err) {
  return send<memos_cube>(client, pending, err,
                          [&](memos::Client& k) { return k.cube_show_async(text(name)); });
}

int memos_cube_show(memos_client* client, const char* name, memos_cube** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_cube_show_send(client, name, &p, err), &p, result, err);
}

int memos_cube_remove_send(memos_client* client, const char* name, int force,
                           memos_pending** pending, memos_error* err) {
  return send<void>(client, pending, err,
                    [&](memos::Client& k) { return k.cube_remove_async(text(name), force != 0); });
}

int memos_cube_remove(memos_client* client, const char* name, int force, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_cube_remove_send(client, name, force, &p, err), &p, nullptr, err);
}

int memos_cube_share_send(memos_client* client, const char* name, const char* tenant, int write,
                          memos_pending** pending, memos_error* err) {
  return send<memos_cube>(client, pending, err, [&](memos::Client& k) {
    return k.cube_share_async(text(name), text(tenant), write != 0);
  });
}

int memos_cube_share(memos_client* client, const char* name, const char* tenant, int write,
                     memos_cube** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_cube_share_send(client, name, tenant, write, &p, err), &p, result, err);
}

int memos_cube_unshare_send(memos_client* client, const char* name, const char* tenant,
                            memos_pending** pending, memos_error* err) {
  return send<memos_cube>(client, pending, err, [&](memos::Client& k) {
    return k.cube_unshare_async(text(name), text(tenant));
  });
}

int memos_cube_unshare(memos_client* client, const char* name, const char* tenant,
                       memos_cube** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_cube_unshare_send(client, name, tenant, &p, err), &p, result, err);
}

int memos_add_send(memos_client* client, const char* cube, const memos_new_item* item,
                   memos_pending** pending, memos_error* err) {
  return send<memos_item>(client, pending, err, [&](memos::Client& k) {
    return k.add_async(text(cube), new_item(item));
  });
}

int memos_add(memos_client* client, const char* cube, const memos_new_item* item,
              memos_item** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_add_send(client, cube, item, &p, err), &p, result, err);
}

int memos_get_send(memos_client* client, const char* cube, uint64_t id, uint32_t version,
                   memos_pending** pending, memos_error* err) {
  return send<memos_item>(client, pending, err,
                          [&](memos::Client& k) { return k.get_async(text(cube), id, version); });
}

int memos_get(memos_client* client, const char* cube, uint64_t id, uint32_t version,
              memos_item** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_get_send(client, cube, id, version, &p, err), &p, result, err);
}

int memos_update_send(memos_client* client, const char* cube, uint64_t id,
                      const memos_item_change* change, memos_pending** pending, memos_error* err) {
  return send<memos_item>(client, pending, err, [&](memos::Client& k) {
    return k.update_async(text(cube), id, item_change(change));
  });
}

int memos_update(memos_client* client, const char* cube, uint64_t id,
                 const memos_item_change* change, memos_item** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_update_send(client, cube, id, change, &p, err), &p, result, err);
}

int memos_remove_send(memos_client* client, const char* cube, uint64_t id,
                      const char* idempotency_key, memos_pending** pending, memos_error* err) {
  return send<memos_item>(client, pending, err, [&](memos::Client& k) {
    return k.remove_async(text(cube), id, text(idempotency_key));
  });
}

int memos_remove(memos_client* client, const char* cube, uint64_t id, const char* idempotency_key,
                 memos_item** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_remove_send(client, cube, id, idempotency_key, &p, err), &p, result, err);
}

int memos_history_send(memos_client* client, const char* cube, uint64_t id, memos_pending** pending,
                       memos_error* err) {
  return send<memos_items>(client, pending, err,
                           [&](memos::Client& k) { return k.history_async(text(cube), id); });
}

int memos_history(memos_client* client, const char* cube, uint64_t id, memos_items** result,
                  memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_history_send(client, cube, id, &p, err), &p, result, err);
}

int memos_set_state_send(memos_client* client, const char* cube, uint64_t id, int state,
                         memos_pending** pending, memos_error* err) {
  return send<memos_item>(client, pending, err, [&](memos::Client& k) {
    return k.set_state_async(text(cube), id, memos::c_api::state(state, "state"));
  });
}

int memos_set_state(memos_client* client, const char* cube, uint64_t id, int state,
                    memos_item** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_set_state_send(client, cube, id, state, &p, err), &p, result, err);
}

int memos_rollback_send(memos_client* client, const char* cube, uint64_t id, uint32_t version,
                        memos_pending** pending, memos_error* err) {
  return send<memos_item>(client, pending, err, [&](memos::Client& k) {
    return k.rollback_async(text(cube), id, version);
  });
}

int memos_rollback(memos_client* client, const char* cube, uint64_t id, uint32_t version,
                   memos_item** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_rollback_send(client, cube, id, version, &p, err), &p, result, err);
}

int memos_diff_send(memos_client* client, const char* cube, uint64_t id, uint32_t from, uint32_t to,
                    memos_pending** pending, memos_error* err) {
  return send<memos_item_diff>(client, pending, err, [&](memos::Client& k) {
    return k.diff_async(text(cube), id, from, to);
  });
}

int memos_diff(memos_client* client, const char* cube, uint64_t id, uint32_t from, uint32_t to,
               memos_item_diff** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_diff_send(client, cube, id, from, to, &p, err), &p, result, err);
}

int memos_snapshot_create_send(memos_client* client, const char* cube, const char* tag,
                               memos_pending** pending, memos_error* err) {
  return send<memos_snapshot>(client, pending, err, [&](memos::Client& k) {
    return k.snapshot_create_async(text(cube), text(tag));
  });
}

int memos_snapshot_create(memos_client* client, const char* cube, const char* tag,
                          memos_snapshot** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_snapshot_create_send(client, cube, tag, &p, err), &p, result, err);
}

int memos_snapshot_list_send(memos_client* client, const char* cube, memos_pending** pending,
                             memos_error* err) {
  return send<memos_snapshots>(client, pending, err,
                               [&](memos::Client& k) { return k.snapshot_list_async(text(cube)); });
}

int memos_snapshot_list(memos_client* client, const char* cube, memos_snapshots** result,
                        memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_snapshot_list_send(client, cube, &p, err), &p, result, err);
}

int memos_snapshot_diff_send(memos_client* client, const char* cube, const char* from_tag,
                             const char* to_tag, memos_pending** pending, memos_error* err) {
  return send<memos_snapshot_changes>(client, pending, err, [&](memos::Client& k) {
    return k.snapshot_diff_async(text(cube), text(from_tag), text(to_tag));
  });
}

int memos_snapshot_diff(memos_client* client, const char* cube, const char* from_tag,
                        const char* to_tag, memos_snapshot_changes** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_snapshot_diff_send(client, cube, from_tag, to_tag, &p, err), &p, result,
                  err);
}

int memos_search_send(memos_client* client, const char* cube, const char* query,
                      const memos_search_options* options, memos_pending** pending,
                      memos_error* err) {
  return send<memos_hits>(client, pending, err, [&](memos::Client& k) {
    return k.search_async(text(cube), text(query), search_options(options));
  });
}

int memos_search(memos_client* client, const char* cube, const char* query,
                 const memos_search_options* options, memos_hits** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_search_send(client, cube, query, options, &p, err), &p, result, err);
}

int memos_search_routed_send(memos_client* client, const char* cube, const char* query,
                             const memos_search_options* options, memos_pending** pending,
                             memos_error* err) {
  return send<memos_routed_search>(client, pending, err, [&](memos::Client& k) {
    return k.search_routed_async(text(cube), text(query), search_options(options));
  });
}

int memos_search_routed(memos_client* client, const char* cube, const char* query,
                        const memos_search_options* options, memos_routed_search** result,
                        memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_search_routed_send(client, cube, query, options, &p, err), &p, result, err);
}

int memos_param_cvec_send(memos_client* client, const char* cube, const char* name,
                          const char* positive, const char* negative, float scale,
                          const char* description, memos_pending** pending, memos_error* err) {
  return send<memos_item>(client, pending, err, [&](memos::Client& k) {
    return k.param_cvec_async(text(cube), text(name), text(positive), text(negative), scale,
                              text(description));
  });
}

int memos_param_cvec(memos_client* client, const char* cube, const char* name, const char* positive,
                     const char* negative, float scale, const char* description,
                     memos_item** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(
      memos_param_cvec_send(client, cube, name, positive, negative, scale, description, &p, err),
      &p, result, err);
}

int memos_param_list_send(memos_client* client, const char* cube, memos_pending** pending,
                          memos_error* err) {
  return send<memos_items>(client, pending, err,
                           [&](memos::Client& k) { return k.param_list_async(text(cube)); });
}

int memos_param_list(memos_client* client, const char* cube, memos_items** result,
                     memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_param_list_send(client, cube, &p, err), &p, result, err);
}

int memos_param_show_send(memos_client* client, const char* cube, const char* name,
                          uint32_t version, memos_pending** pending, memos_error* err) {
  return send<memos_item>(client, pending, err, [&](memos::Client& k) {
    return k.param_show_async(text(cube), text(name), version);
  });
}

int memos_param_show(memos_client* client, const char* cube, const char* name, uint32_t version,
                     memos_item** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_param_show_send(client, cube, name, version, &p, err), &p, result, err);
}

int memos_param_remove_send(memos_client* client, const char* cube, const char* name,
                            memos_pending** pending, memos_error* err) {
  return send<memos_item>(client, pending, err, [&](memos::Client& k) {
    return k.param_remove_async(text(cube), text(name));
  });
}

int memos_param_remove(memos_client* client, const char* cube, const char* name,
                       memos_item** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_param_remove_send(client, cube, name, &p, err), &p, result, err);
}

int memos_param_distill_send(memos_client* client, const memos_distill_args* args,
                             memos_pending** pending, memos_error* err) {
  return send<memos_job>(client, pending, err, [&](memos::Client& k) {
    return k.param_distill_async(distill_args(args));
  });
}

int memos_param_distill(memos_client* client, const memos_distill_args* args, memos_job** result,
                        memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_param_distill_send(client, args, &p, err), &p, result, err);
}

int memos_job_list_send(memos_client* client, memos_pending** pending, memos_error* err) {
  return send<memos_jobs>(client, pending, err,
                          [&](memos::Client& k) { return k.job_list_async(); });
}

int memos_job_list(memos_client* client, memos_jobs** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_job_list_send(client, &p, err), &p, result, err);
}

int memos_job_show_send(memos_client* client, uint64_t id, memos_pending** pending,
                        memos_error* err) {
  return send<memos_job>(client, pending, err,
                         [&](memos::Client& k) { return k.job_show_async(id); });
}

int memos_job_show(memos_client* client, uint64_t id, memos_job** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_job_show_send(client, id, &p, err), &p, result, err);
}

int memos_job_cancel_send(memos_client* client, uint64_t id, memos_pending** pending,
                          memos_error* err) {
  return send<memos_job>(client, pending, err,
                         [&](memos::Client& k) { return k.job_cancel_async(id); });
}

int memos_job_cancel(memos_client* client, uint64_t id, memos_job** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_job_cancel_send(client, id, &p, err), &p, result, err);
}

int memos_plugin_list_send(memos_client* client, memos_pending** pending, memos_error* err) {
  return send<memos_plugins>(client, pending, err,
                             [&](memos::Client& k) { return k.plugin_list_async(); });
}

int memos_plugin_list(memos_client* client, memos_plugins** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_plugin_list_send(client, &p, err), &p, result, err);
}

int memos_plugin_info_get_send(memos_client* client, const char* name, memos_pending** pending,
                               memos_error* err) {
  return send<memos_plugin_info>(client, pending, err,
                                 [&](memos::Client& k) { return k.plugin_info_async(text(name)); });
}

int memos_plugin_info_get(memos_client* client, const char* name, memos_plugin_info** result,
                          memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_plugin_info_get_send(client, name, &p, err), &p, result, err);
}

int memos_plugin_reload_send(memos_client* client, const char* name, memos_pending** pending,
                             memos_error* err) {
  return send<memos_plugin_info>(
      client, pending, err, [&](memos::Client& k) { return k.plugin_reload_async(text(name)); });
}

int memos_plugin_reload(memos_client* client, const char* name, memos_plugin_info** result,
                        memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_plugin_reload_send(client, name, &p, err), &p, result, err);
}

int memos_policy_show_send(memos_client* client, const char* tenant, memos_pending** pending,
                           memos_error* err) {
  return send<memos_policy_info>(
      client, pending, err, [&](memos::Client& k) { return k.policy_show_async(text(tenant)); });
}

int memos_policy_show(memos_client* client, const char* tenant, memos_policy_info** result,
                      memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_policy_show_send(client, tenant, &p, err), &p, result, err);
}

int memos_policy_reload_send(memos_client* client, memos_pending** pending, memos_error* err) {
  return send<memos_policy_info>(client, pending, err,
                                 [&](memos::Client& k) { return k.policy_reload_async(); });
}

int memos_policy_reload(memos_client* client, memos_policy_info** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_policy_reload_send(client, &p, err), &p, result, err);
}

int memos_tenant_usage_get_send(memos_client* client, const char* tenant, memos_pending** pending,
                                memos_error* err) {
  return send<memos_tenant_usage>(
      client, pending, err, [&](memos::Client& k) { return k.tenant_usage_async(text(tenant)); });
}

int memos_tenant_usage_get(memos_client* client, const char* tenant, memos_tenant_usage** result,
                           memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_tenant_usage_get_send(client, tenant, &p, err), &p, result, err);
}

int memos_chat_send(memos_client* client, const char* cube, const char* prompt,
                    const memos_chat_options* options, memos_pending** pending, memos_error* err) {
  return send<memos_chat_reply>(client, pending, err, [&](memos::Client& k) {
    return k.chat_async(text(cube), text(prompt), chat_options(options));
  });
}

int memos_chat(memos_client* client, const char* cube, const char* prompt,
               const memos_chat_options* options, memos_chat_reply** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_chat_send(client, cube, prompt, options, &p, err), &p, result, err);
}

int memos_chat_stream_send(memos_client* client, const char* cube, const char* prompt,
                           const memos_chat_options* options, memos_piece_fn on_piece, void* ctx,
                           memos_pending** pending, memos_error* err) {
  return send<memos_chat_reply>(client, pending, err, [&](memos::Client& k) {
    return k.chat_async(text(cube), text(prompt), chat_options(options),
                        piece_handler(on_piece, ctx));
  });
}

int memos_chat_stream(memos_client* client, const char* cube, const char* prompt,
                      const memos_chat_options* options, memos_piece_fn on_piece, void* ctx,
                      memos_chat_reply** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_chat_stream_send(client, cube, prompt, options, on_piece, ctx, &p, err), &p,
                  result, err);
}

int memos_kv_prefill_send(memos_client* client, const char* cube, const uint64_t* ids, size_t n_ids,
                          uint32_t top, memos_pending** pending, memos_error* err) {
  return send<memos_activation>(client, pending, err, [&](memos::Client& k) {
    return k.kv_prefill_async(text(cube), memos::c_api::ids(ids, n_ids, "ids"), top);
  });
}

int memos_kv_prefill(memos_client* client, const char* cube, const uint64_t* ids, size_t n_ids,
                     uint32_t top, memos_activation** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_kv_prefill_send(client, cube, ids, n_ids, top, &p, err), &p, result, err);
}

int memos_kv_list_send(memos_client* client, const char* cube, memos_pending** pending,
                       memos_error* err) {
  return send<memos_activations>(client, pending, err,
                                 [&](memos::Client& k) { return k.kv_list_async(text(cube)); });
}

int memos_kv_list(memos_client* client, const char* cube, memos_activations** result,
                  memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_kv_list_send(client, cube, &p, err), &p, result, err);
}

int memos_kv_remove_send(memos_client* client, const char* cube, uint64_t id,
                         memos_pending** pending, memos_error* err) {
  return send<memos_activation>(
      client, pending, err, [&](memos::Client& k) { return k.kv_remove_async(text(cube), id); });
}

int memos_kv_remove(memos_client* client, const char* cube, uint64_t id, memos_activation** result,
                    memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_kv_remove_send(client, cube, id, &p, err), &p, result, err);
}

int memos_kv_stats_get_send(memos_client* client, memos_pending** pending, memos_error* err) {
  return send<memos_kv_stats>(client, pending, err,
                              [&](memos::Client& k) { return k.kv_stats_async(); });
}

int memos_kv_stats_get(memos_client* client, memos_kv_stats** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_kv_stats_get_send(client, &p, err), &p, result, err);
}

int memos_sched_status_get_send(memos_client* client, const char* cube, memos_pending** pending,
                                memos_error* err) {
  return send<memos_sched_status>(
      client, pending, err, [&](memos::Client& k) { return k.sched_status_async(text(cube)); });
}

int memos_sched_status_get(memos_client* client, const char* cube, memos_sched_status** result,
                           memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_sched_status_get_send(client, cube, &p, err), &p, result, err);
}

int memos_sched_log_send(memos_client* client, const char* cube, uint32_t max,
                         memos_pending** pending, memos_error* err) {
  return send<memos_sched_decisions>(
      client, pending, err, [&](memos::Client& k) { return k.sched_log_async(text(cube), max); });
}

int memos_sched_log(memos_client* client, const char* cube, uint32_t max,
                    memos_sched_decisions** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_sched_log_send(client, cube, max, &p, err), &p, result, err);
}

int memos_sched_run_send(memos_client* client, memos_pending** pending, memos_error* err) {
  return send<memos_sched_pass>(client, pending, err,
                                [&](memos::Client& k) { return k.sched_run_async(); });
}

int memos_sched_run(memos_client* client, memos_sched_pass** result, memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_sched_run_send(client, &p, err), &p, result, err);
}

int memos_explain_send(memos_client* client, const char* cube, uint64_t id, memos_pending** pending,
                       memos_error* err) {
  return send<memos_explanation>(client, pending, err,
                                 [&](memos::Client& k) { return k.explain_async(text(cube), id); });
}

int memos_explain(memos_client* client, const char* cube, uint64_t id, memos_explanation** result,
                  memos_error* err) {
  memos_pending* p = nullptr;
  return blocking(memos_explain_send(client, cube, id, &p, err), &p, result, err);
}

}  // extern "C"
