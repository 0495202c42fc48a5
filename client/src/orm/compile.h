// Pieces of the SQL compiler the unit of work and the DDL writer share: identifier quoting and a writer that
// appends SQL text and collects parameters as $n.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "pooler/orm/expression.hpp"

namespace pooler::orm::detail {

// "name" with embedded quotes doubled.
std::string quote(std::string_view identifier);
// "table"."column"
std::string qualified(std::string_view table, const EntityInfo& e, std::size_t column);

// Tables in foreign-key order: referenced before referencing (ties keep the given order).
std::vector<const EntityInfo*> dependency_order(std::vector<const EntityInfo*> types);

struct SqlWriter {
  std::string sql;
  std::vector<client::Value> params;

  // Adds a parameter; returns its placeholder ($n).
  std::string bind(client::Value v);
  // `nested`: the expression is an operand, so AND/OR lists get parentheses.
  void expr(const Node& n, bool nested);
  void conjunction(const std::vector<NodePtr>& terms);
  void entity_columns(const EntityInfo& e, std::string_view table);
};

}  // namespace pooler::orm::detail
