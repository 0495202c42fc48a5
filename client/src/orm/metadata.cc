// DDL for mapped tables, SQLAlchemy-style: columns, then PRIMARY KEY, UNIQUE and FOREIGN KEY constraints.
#include "pooler/orm/metadata.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "client/src/orm/compile.h"
#include "pooler/connection.hpp"

namespace pooler::orm {

namespace {
// The mapped tables plus the association tables of their many-to-many relationships (each once, though both
// sides name it), so that dependency_order puts those after both tables they refer to.
std::vector<const detail::EntityInfo*> with_secondaries(std::vector<const detail::EntityInfo*> tables) {
  const std::size_t mapped = tables.size();
  for (std::size_t i = 0; i < mapped; ++i) {
    for (const auto& rel : tables[i]->relationships) {
      if (rel.secondary == nullptr) continue;
      const detail::EntityInfo* sec = &rel.secondary();
      bool known = std::any_of(tables.begin(), tables.end(), [&](const auto* t) { return t->table == sec->table; });
      if (!known) tables.push_back(sec);
    }
  }
  return tables;
}
}  // namespace

MetaData::MetaData(std::vector<const detail::EntityInfo*> tables)
    : tables_(detail::dependency_order(with_secondaries(std::move(tables)))) {}

std::vector<std::string> MetaData::sorted_tables() const {
  std::vector<std::string> out;
  for (const auto* t : tables_) out.push_back(t->table);
  return out;
}

std::vector<std::string> MetaData::create_statements() const {
  using detail::quote;
  std::vector<std::string> out;
  std::vector<std::string> indexes;
  for (const auto* t : tables_) {
    std::vector<std::string> parts;
    std::vector<std::string> constraints;
    for (const auto& c : t->columns) {
      std::string def = quote(c.name) + " " + c.ddl;
      if (!c.server_default.empty()) def += " DEFAULT " + c.server_default;
      if (!c.nullable) def += " NOT NULL";
      parts.push_back(std::move(def));
      if (c.unique) constraints.push_back("UNIQUE (" + quote(c.name) + ")");
      if (c.foreign) {
        const auto& target = c.foreign->entity();
        std::string fk = fmt::format("FOREIGN KEY ({}) REFERENCES {} ({})", quote(c.name), quote(target.table),
                                     quote(target.columns[c.foreign->column()].name));
        if (!c.ondelete.empty()) fk += " ON DELETE " + c.ondelete;
        constraints.push_back(std::move(fk));
      }
      if (c.index) {
        indexes.push_back(fmt::format("CREATE INDEX IF NOT EXISTS {} ON {} ({})", quote("ix_" + t->table + "_" + c.name),
                                      quote(t->table), quote(c.name)));
      }
    }
    std::string key;
    for (std::size_t i : t->pks) key += (key.empty() ? "" : ", ") + quote(t->columns[i].name);
    parts.push_back("PRIMARY KEY (" + key + ")");
    for (auto& c : constraints) parts.push_back(std::move(c));
    std::string sql = "CREATE TABLE IF NOT EXISTS " + quote(t->table) + " (";
    for (std::size_t i = 0; i < parts.size(); ++i) sql += (i == 0 ? "" : ", ") + parts[i];
    out.push_back(sql + ")");
  }
  for (auto& i : indexes) out.push_back(std::move(i));
  return out;
}

std::vector<std::string> MetaData::drop_statements() const {
  std::vector<std::string> out;
  for (auto t = tables_.rbegin(); t != tables_.rend(); ++t) out.push_back("DROP TABLE IF EXISTS " + detail::quote((*t)->table));
  return out;
}

void MetaData::create_all(client::Connection& connection) const {
  for (const auto& sql : create_statements()) (void)connection.exec_driver_sql(sql);
}
void MetaData::drop_all(client::Connection& connection) const {
  for (const auto& sql : drop_statements()) (void)connection.exec_driver_sql(sql);
}
void MetaData::create_all(const client::Engine& engine) const {
  auto tx = engine.begin();
  for (const auto& sql : create_statements()) (void)tx.exec_driver_sql(sql);
  tx.commit();
}
void MetaData::drop_all(const client::Engine& engine) const {
  auto tx = engine.begin();
  for (const auto& sql : drop_statements()) (void)tx.exec_driver_sql(sql);
  tx.commit();
}

}  // namespace pooler::orm
