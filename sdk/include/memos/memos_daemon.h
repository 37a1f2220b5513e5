/* memos_daemon.h — the C API's calls about memosd itself (memos.h, memos.h(3)):
 * its status and metrics, the cluster, plugins, tenants' policies and usage,
 * and the scheduler.
 *
 * Included by memos/memos.h, whose rules hold here as everywhere (CALLS,
 * RETURN VALUES, OWNERSHIP, STRINGS, THREADS); the results are in
 * memos/memos_results.h. Include memos/memos.h, not this header.
 */
#ifndef MEMOS_MEMOS_DAEMON_H
#define MEMOS_MEMOS_DAEMON_H

#ifndef MEMOS_MEMOS_H
#error "include memos/memos.h, not memos/memos_daemon.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the daemon ------------------------------------------------------------ */

/* Version, uptime, the caller's tenant, its cubes and every plugin. */
MEMOS_API int memos_status_get(memos_client* client, memos_status** status, memos_error* err);
MEMOS_API int memos_status_get_send(memos_client* client, memos_pending** pending,
                                    memos_error* err);
/* The Prometheus text exposition (memctl(1), metrics).
 * Errors: MEMOS_PERMISSION_DENIED (not an administrator). */
MEMOS_API int memos_metrics(memos_client* client, memos_str** text, memos_error* err);
MEMOS_API int memos_metrics_send(memos_client* client, memos_pending** pending, memos_error* err);
/* The cluster's shards, owners and nodes (memctl(1), cluster status).
 * Errors: MEMOS_PERMISSION_DENIED (not an administrator), MEMOS_UNAVAILABLE. */
MEMOS_API int memos_cluster_status_get(memos_client* client, memos_cluster_status** status,
                                       memos_error* err);
MEMOS_API int memos_cluster_status_get_send(memos_client* client, memos_pending** pending,
                                            memos_error* err);
/* Since 1.3: asks the log's leader to give its role to another replica and
 * waits for the election (memctl(1), cluster step-down); status->log names
 * the new leader and the previous one, and nothing else is set.
 * Errors: MEMOS_PERMISSION_DENIED (not an administrator), MEMOS_CONFLICT (one
 * node, or a log of one replica), MEMOS_UNAVAILABLE (no leader now, the
 * engine refused, or no other leader within 10 s). */
MEMOS_API int memos_cluster_step_down(memos_client* client, memos_cluster_status** status,
                                      memos_error* err);
MEMOS_API int memos_cluster_step_down_send(memos_client* client, memos_pending** pending,
                                           memos_error* err);

/* ---- plugins ------------------------------------------------------------------------ */

MEMOS_API int memos_plugin_list(memos_client* client, memos_plugins** plugins, memos_error* err);
MEMOS_API int memos_plugin_list_send(memos_client* client, memos_pending** pending,
                                     memos_error* err);
/* Errors: MEMOS_NOT_FOUND. */
MEMOS_API int memos_plugin_info_get(memos_client* client, const char* name,
                                    memos_plugin_info** plugin, memos_error* err);
MEMOS_API int memos_plugin_info_get_send(memos_client* client, const char* name,
                                         memos_pending** pending, memos_error* err);
/* Errors: MEMOS_NOT_FOUND, MEMOS_CONFLICT, MEMOS_PERMISSION_DENIED. */
MEMOS_API int memos_plugin_reload(memos_client* client, const char* name,
                                  memos_plugin_info** plugin, memos_error* err);
MEMOS_API int memos_plugin_reload_send(memos_client* client, const char* name,
                                       memos_pending** pending, memos_error* err);

/* ---- tenants --------------------------------------------------------------------------- */

/* tenant NULL: the caller's. Errors: MEMOS_PERMISSION_DENIED, MEMOS_NOT_FOUND. */
MEMOS_API int memos_policy_show(memos_client* client, const char* tenant,
                                memos_policy_info** policy, memos_error* err);
MEMOS_API int memos_policy_show_send(memos_client* client, const char* tenant,
                                     memos_pending** pending, memos_error* err);
/* Errors: MEMOS_PERMISSION_DENIED, MEMOS_BAD_REQUEST (a file has an error). */
MEMOS_API int memos_policy_reload(memos_client* client, memos_policy_info** policy,
                                  memos_error* err);
MEMOS_API int memos_policy_reload_send(memos_client* client, memos_pending** pending,
                                       memos_error* err);
/* tenant NULL: the caller's. Errors: MEMOS_PERMISSION_DENIED, MEMOS_NOT_FOUND. */
MEMOS_API int memos_tenant_usage_get(memos_client* client, const char* tenant,
                                     memos_tenant_usage** usage, memos_error* err);
MEMOS_API int memos_tenant_usage_get_send(memos_client* client, const char* tenant,
                                          memos_pending** pending, memos_error* err);

/* ---- the scheduler ---------------------------------------------------------------------- */

/* cube NULL: the caller's cubes. Errors: MEMOS_BAD_REQUEST,
 * MEMOS_PERMISSION_DENIED, MEMOS_NOT_FOUND. */
MEMOS_API int memos_sched_status_get(memos_client* client, const char* cube,
                                     memos_sched_status** status, memos_error* err);
MEMOS_API int memos_sched_status_get_send(memos_client* client, const char* cube,
                                          memos_pending** pending, memos_error* err);
/* max 0: 100. */
MEMOS_API int memos_sched_log(memos_client* client, const char* cube, uint32_t max,
                              memos_sched_decisions** log, memos_error* err);
MEMOS_API int memos_sched_log_send(memos_client* client, const char* cube, uint32_t max,
                                   memos_pending** pending, memos_error* err);
MEMOS_API int memos_sched_run(memos_client* client, memos_sched_pass** pass, memos_error* err);
MEMOS_API int memos_sched_run_send(memos_client* client, memos_pending** pending, memos_error* err);
/* Errors: MEMOS_BAD_REQUEST, MEMOS_NOT_FOUND. */
MEMOS_API int memos_explain(memos_client* client, const char* cube, uint64_t id,
                            memos_explanation** explanation, memos_error* err);
MEMOS_API int memos_explain_send(memos_client* client, const char* cube, uint64_t id,
                                 memos_pending** pending, memos_error* err);

#ifdef __cplusplus
}
#endif

#endif /* MEMOS_MEMOS_DAEMON_H */
