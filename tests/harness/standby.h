// Turns a test cluster into a streaming hot standby of another, for tests of routing by
// target_session_attrs: pg_basebackup -R from the primary into the standby's data directory.
#pragma once

#include <chrono>

#include "tests/harness/pg_cluster.h"

namespace pooler::test {

// Stops `standby`, replaces its data directory with `pg_basebackup -R` of `primary` (over the primary's unix
// socket, as the superuser, which the harness's pg_hba.conf trusts for replication), keeps the standby's own
// socket directory, and starts it again on its own port. Returns once the standby accepts read-only
// connections and reports pg_is_in_recovery() = true. Throws std::runtime_error with the tool's output or
// the server log on failure. Both clusters must come from the same PgClusterOptions::bin_dir.
void make_streaming_standby(PgCluster& standby, const PgCluster& primary);

// Waits until `standby` has replayed everything `primary` had written when this was called (so a role or
// table just created on the primary is visible there). Throws on timeout.
void wait_for_replay(const PgCluster& primary, const PgCluster& standby,
                     std::chrono::milliseconds timeout = std::chrono::seconds(20));

}  // namespace pooler::test
