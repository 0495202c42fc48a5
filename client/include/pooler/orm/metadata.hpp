// metadata<User, Post>(): the mapped tables as a set, for DDL — create_all (CREATE TABLE IF NOT EXISTS, in
// foreign-key order, plus CREATE INDEX IF NOT EXISTS) and drop_all (DROP TABLE IF EXISTS, reverse order).
#pragma once

#include <string>
#include <vector>

#include "pooler/connection.hpp"
#include "pooler/engine.hpp"
#include "pooler/orm/mapping.hpp"

namespace pooler::orm {

class MetaData {
 public:
  explicit MetaData(std::vector<const detail::EntityInfo*> tables);

  // Table names, referenced tables before the tables referencing them.
  [[nodiscard]] std::vector<std::string> sorted_tables() const;
  // The statements create_all / drop_all run, in order.
  [[nodiscard]] std::vector<std::string> create_statements() const;
  [[nodiscard]] std::vector<std::string> drop_statements() const;

  // In one transaction of their own (engine), or in the connection's current one (not committed).
  void create_all(const client::Engine& engine) const;
  void create_all(client::Connection& connection) const;
  void drop_all(const client::Engine& engine) const;
  void drop_all(client::Connection& connection) const;

 private:
  std::vector<const detail::EntityInfo*> tables_;  // sorted
};

template <Mapped... Ts>
[[nodiscard]] MetaData metadata() {
  return MetaData({&detail::entity_info<Ts>()...});
}

}  // namespace pooler::orm
