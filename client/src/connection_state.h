// What a Connection and its Transactions share: the pooled libpq connection (leased lazily, re-leased after
// a disconnect), and the transaction state — root transaction and the stack of savepoints — that decides
// when BEGIN, COMMIT, SAVEPOINT and friends are sent.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <libpq-fe.h>

#include "client/src/engine_impl.h"
#include "pooler/result.hpp"
#include "pooler/text.hpp"
#include "pooler/types.hpp"

namespace pooler::client::detail {

class ConnectionState {
 public:
  explicit ConnectionState(std::shared_ptr<EngineImpl> engine) : engine_(std::move(engine)) {}
  ~ConnectionState() { close(); }
  ConnectionState(const ConnectionState&) = delete;
  ConnectionState& operator=(const ConnectionState&) = delete;

  // Leases a connection if there is none (after a disconnect, unless a transaction was lost with it).
  void acquire();
  [[nodiscard]] PGconn* pg();

  [[nodiscard]] Result execute(const TextClause& statement, const Params& params);
  [[nodiscard]] Result exec_driver_sql(std::string_view sql, const std::vector<Value>& params);

  void begin_root();  // explicit; InvalidRequestError when a transaction is open
  void autobegin();   // BEGIN unless in a transaction or AUTOCOMMIT
  void begin_savepoint();
  void commit_root();
  void rollback_root();
  void release_savepoint(int depth);
  void rollback_savepoint(int depth);
  [[nodiscard]] bool active(int depth, std::uint64_t serial) const;
  [[nodiscard]] std::uint64_t serial_at(int depth) const;
  [[nodiscard]] bool in_transaction() const { return in_tx_; }
  [[nodiscard]] int savepoint_depth() const { return static_cast<int>(savepoints_.size()); }

  // Rolls back and returns the connection to the pool; further use raises ResourceClosedError.
  void close() noexcept;
  [[nodiscard]] bool closed() const { return closed_; }
  [[nodiscard]] bool invalidated() const { return invalidated_; }
  void invalidate() noexcept;

 private:
  struct Savepoint {
    std::uint64_t serial;
    std::string name;
  };

  // Runs one statement; text-format results. Throws DBError (discarding the connection if it was lost).
  PGresult* run(const char* sql, int n, const std::uint32_t* types, const char* const* values,
                const int* lengths, const int* formats, std::string_view shown);
  void run_command(const std::string& sql);
  void check_open() const;
  void lost_connection() noexcept;

  std::shared_ptr<EngineImpl> engine_;
  std::optional<Lease> lease_;
  bool closed_ = false;
  bool invalidated_ = false;
  // A transaction was open when the connection was lost: only rollback() may follow.
  bool pending_rollback_ = false;
  bool in_tx_ = false;
  std::uint64_t root_serial_ = 0;
  std::vector<Savepoint> savepoints_;
  std::uint64_t next_serial_ = 1;
  std::uint64_t savepoint_names_ = 0;
};

}  // namespace pooler::client::detail
