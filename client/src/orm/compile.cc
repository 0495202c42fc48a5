// The SQL compiler: expression trees and SELECT/UPDATE/DELETE cores to PostgreSQL text with $n parameters.
// Identifiers are always double-quoted; values are always parameters.
#include <algorithm>
#include <functional>
#include <unordered_set>

#include <fmt/format.h>
#include <libpq-fe.h>

#include "client/src/orm/compile.h"
#include "pooler/orm/statement.hpp"

namespace pooler::orm::detail {

std::string ddl_type(IntegerType t, bool serial) { return std::string(serial ? t.serial_name : t.ddl_name); }
std::string ddl_type(BigIntegerType t, bool serial) { return std::string(serial ? t.serial_name : t.ddl_name); }
std::string ddl_type(SmallIntegerType t, bool serial) { return std::string(serial ? t.serial_name : t.ddl_name); }
std::string ddl_type(StringType t, bool) { return t.length > 0 ? fmt::format("VARCHAR({})", t.length) : "VARCHAR"; }
std::string ddl_type(NumericType t, bool) {
  if (t.precision == 0) return "NUMERIC";
  return fmt::format("NUMERIC({}, {})", t.precision, t.scale);
}

RawField raw_field(const void* pg_result, int row, int column) {
  const auto* r = static_cast<const PGresult*>(pg_result);
  RawField f;
  f.null = PQgetisnull(r, row, column) != 0;
  f.data = PQgetvalue(r, row, column);
  f.size = static_cast<std::size_t>(PQgetlength(r, row, column));
  f.oid = PQftype(r, column);
  return f;
}

ResultColumns result_columns(const void* pg_result, int offset, std::size_t count) {
  const auto* r = static_cast<const PGresult*>(pg_result);
  ResultColumns c;
  c.pg = pg_result;
  c.offset = offset;
  c.oids.reserve(count);
  for (std::size_t i = 0; i < count; ++i) c.oids.push_back(PQftype(r, offset + static_cast<int>(i)));
  return c;
}

void read_fields(const ResultColumns& columns, int row, std::size_t n, RawField* out) {
  const auto* r = static_cast<const PGresult*>(columns.pg);
  for (std::size_t i = 0; i < n; ++i) {
    const int column = columns.offset + static_cast<int>(i);
    RawField& f = out[i];
    const int length = PQgetlength(r, row, column);
    f.data = PQgetvalue(r, row, column);
    f.size = static_cast<std::size_t>(length);
    f.null = length == 0 && PQgetisnull(r, row, column) != 0;
    f.oid = columns.oids[i];
  }
}

std::size_t single_pk(const EntityInfo& e) {
  if (e.composite_key()) {
    throw client::ArgumentError(fmt::format("pooler::orm: table {} has a composite primary key; relationships "
                                            "referring to it are not supported",
                                            e.table));
  }
  return e.pk;
}

[[noreturn]] void throw_no_foreign_key(std::string_view table) {
  throw client::ArgumentError(fmt::format("pooler::orm: a many-to-many relationship (through {}) has no foreign key "
                                          "column on either mapped table",
                                          table));
}

EntityInfo make_secondary_info(const Secondary& table, const EntityInfo& (*owner)(), const EntityInfo& (*target)()) {
  EntityInfo e;
  e.type = &typeid(Secondary);
  e.table = std::string(table.table);
  // Column 0 refers to the owner, column 1 to the target: both NOT NULL, together the key, and cascading so
  // that deleting either row (from SQL too) removes the link.
  for (auto [name, side] : {std::pair{table.local_column, owner}, std::pair{table.remote_column, target}}) {
    const EntityInfo& referenced = side();
    const ColumnInfo& key = referenced.columns[single_pk(referenced)];
    ColumnInfo c;
    c.name = std::string(name);
    c.ddl = key.plain_ddl;
    c.plain_ddl = key.plain_ddl;
    c.primary_key = true;
    c.nullable = false;
    c.foreign = ForeignKeyTarget{side, [side] { return single_pk(side()); }};
    c.ondelete = "CASCADE";
    e.columns.push_back(std::move(c));
  }
  if (e.columns[0].name == e.columns[1].name) {
    throw client::ArgumentError("pooler::orm: secondary(" + e.table + "): both columns are named " + e.columns[0].name);
  }
  e.pk = 0;
  e.pks = {0, 1};
  return e;
}

namespace {
// Owner column = $1 AND target column = $2 of the association table.
void secondary_row_condition(SqlWriter& w, const EntityInfo& sec, client::Value owner_key, client::Value target_key) {
  // One statement per bind: the order of operands of + is unspecified, and $1 must be the owner's key.
  w.sql += qualified(sec.table, sec, 0) + " = ";
  w.sql += w.bind(std::move(owner_key));
  w.sql += " AND " + qualified(sec.table, sec, 1) + " = ";
  w.sql += w.bind(std::move(target_key));
}
}  // namespace

Compiled compile_secondary_insert(const EntityInfo& owner, std::size_t rel, client::Value owner_key,
                                  client::Value target_key) {
  const EntityInfo& sec = owner.relationships.at(rel).secondary();
  SqlWriter w;
  w.sql = fmt::format("INSERT INTO {} ({}, {}) VALUES (", quote(sec.table), quote(sec.columns[0].name),
                      quote(sec.columns[1].name));
  w.sql += w.bind(std::move(owner_key)) + ", ";
  w.sql += w.bind(std::move(target_key)) + ") ON CONFLICT DO NOTHING";
  return Compiled{std::move(w.sql), std::move(w.params)};
}

Compiled compile_secondary_delete(const EntityInfo& owner, std::size_t rel, client::Value owner_key,
                                  client::Value target_key) {
  const EntityInfo& sec = owner.relationships.at(rel).secondary();
  SqlWriter w;
  w.sql = "DELETE FROM " + quote(sec.table) + " WHERE ";
  secondary_row_condition(w, sec, std::move(owner_key), std::move(target_key));
  return Compiled{std::move(w.sql), std::move(w.params)};
}

void throw_detached(std::string_view what) {
  throw DetachedInstanceError(fmt::format(
      "this {} is not loaded and its parent is not in a session (the session was closed, or the object was "
      "copied or expunged); load it eagerly (selectinload/joinedload) or access it while the session is open",
      what));
}

NodePtr column_node(const EntityInfo& entity, std::size_t column) {
  auto n = std::make_shared<Node>();
  n->kind = Node::Kind::kColumn;
  n->entity = &entity;
  n->column = column;
  return n;
}
NodePtr param_node(client::Value value) {
  auto n = std::make_shared<Node>();
  n->kind = Node::Kind::kParam;
  n->value = std::move(value);
  return n;
}
NodePtr binary_node(std::string op, NodePtr l, NodePtr r) {
  auto n = std::make_shared<Node>();
  n->kind = Node::Kind::kBinary;
  n->op = std::move(op);
  n->args = {std::move(l), std::move(r)};
  return n;
}
NodePtr list_node(Node::Kind kind, std::vector<NodePtr> args, std::string op) {
  auto n = std::make_shared<Node>();
  n->kind = kind;
  n->op = std::move(op);
  n->args = std::move(args);
  return n;
}

std::string quote(std::string_view identifier) {
  std::string out = "\"";
  for (char c : identifier) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string qualified(std::string_view table, const EntityInfo& e, std::size_t column) {
  return quote(table) + "." + quote(e.columns[column].name);
}

std::string SqlWriter::bind(client::Value v) {
  params.push_back(std::move(v));
  return fmt::format("${}", params.size());
}

void SqlWriter::expr(const Node& n, bool nested) {
  switch (n.kind) {
    case Node::Kind::kColumn:
      sql += qualified(n.entity->table, *n.entity, n.column);
      return;
    case Node::Kind::kParam:
      sql += bind(n.value);
      return;
    case Node::Kind::kBinary:
      expr(*n.args[0], true);
      sql += " " + n.op + " ";
      expr(*n.args[1], true);
      return;
    case Node::Kind::kAnd:
    case Node::Kind::kOr: {
      if (n.args.size() == 1) return expr(*n.args[0], nested);
      bool parens = nested && n.args.size() > 1;
      if (parens) sql += "(";
      for (std::size_t i = 0; i < n.args.size(); ++i) {
        if (i > 0) sql += n.kind == Node::Kind::kAnd ? " AND " : " OR ";
        expr(*n.args[i], true);
      }
      if (parens) sql += ")";
      return;
    }
    case Node::Kind::kNot:
      sql += "NOT (";
      expr(*n.args[0], false);
      sql += ")";
      return;
    case Node::Kind::kIsNull:
      expr(*n.args[0], true);
      sql += " " + n.op + " NULL";
      return;
    case Node::Kind::kIn:
      if (n.args.size() == 1) {
        sql += "false";  // IN () over no values matches nothing
        return;
      }
      expr(*n.args[0], true);
      sql += " IN (";
      for (std::size_t i = 1; i < n.args.size(); ++i) {
        if (i > 1) sql += ", ";
        expr(*n.args[i], true);
      }
      sql += ")";
      return;
    case Node::Kind::kBetween:
      expr(*n.args[0], true);
      sql += " BETWEEN ";
      expr(*n.args[1], true);
      sql += " AND ";
      expr(*n.args[2], true);
      return;
    case Node::Kind::kFunction:
      sql += n.op + "(";
      if (n.args.empty()) sql += "*";
      for (std::size_t i = 0; i < n.args.size(); ++i) {
        if (i > 0) sql += ", ";
        expr(*n.args[i], false);
      }
      sql += ")";
      return;
  }
}

void SqlWriter::conjunction(const std::vector<NodePtr>& terms) {
  for (std::size_t i = 0; i < terms.size(); ++i) {
    if (i > 0) sql += " AND ";
    expr(*terms[i], terms.size() > 1);
  }
}

void SqlWriter::entity_columns(const EntityInfo& e, std::string_view table) {
  for (std::size_t i = 0; i < e.columns.size(); ++i) {
    if (i > 0) sql += ", ";
    sql += qualified(table, e, i);
  }
}

namespace {

void collect_entities(const Node& n, std::vector<const EntityInfo*>& out) {
  if (n.kind == Node::Kind::kColumn && std::find(out.begin(), out.end(), n.entity) == out.end()) {
    out.push_back(n.entity);
  }
  for (const auto& a : n.args) collect_entities(*a, out);
}

bool contains(const std::vector<const EntityInfo*>& v, const EntityInfo* e) {
  return std::find(v.begin(), v.end(), e) != v.end();
}

// ON for a join without one: a foreign key from `target` to something in FROM, or the other way round.
NodePtr derive_on(const EntityInfo& target, const std::vector<const EntityInfo*>& present) {
  for (const EntityInfo* e : present) {
    for (std::size_t i = 0; i < target.columns.size(); ++i) {
      const auto& fk = target.columns[i].foreign;
      if (fk && &fk->entity() == e) return binary_node("=", column_node(*e, fk->column()), column_node(target, i));
    }
    for (std::size_t i = 0; i < e->columns.size(); ++i) {
      const auto& fk = e->columns[i].foreign;
      if (fk && &fk->entity() == &target) {
        return binary_node("=", column_node(target, fk->column()), column_node(*e, i));
      }
    }
  }
  throw client::InvalidRequestError(
      fmt::format("Can't find any foreign key relationships between {} and the FROM clause; give join() an ON "
                  "condition",
                  target.table));
}

}  // namespace

// Tables in foreign-key order: referenced before referencing (ties keep first-seen order).
std::vector<const EntityInfo*> dependency_order(std::vector<const EntityInfo*> types) {
  std::vector<const EntityInfo*> out;
  std::unordered_set<const EntityInfo*> done;
  std::unordered_set<const EntityInfo*> visiting;
  std::function<void(const EntityInfo*)> visit = [&](const EntityInfo* t) {
    if (done.contains(t) || visiting.contains(t)) return;  // a cycle: keep the order we have
    visiting.insert(t);
    for (const auto& c : t->columns) {
      if (!c.foreign) continue;
      const EntityInfo* dep = &c.foreign->entity();
      if (dep != t && std::find(types.begin(), types.end(), dep) != types.end()) visit(dep);
    }
    visiting.erase(t);
    done.insert(t);
    out.push_back(t);
  };
  for (const EntityInfo* t : types) visit(t);
  return out;
}


Compiled compile_select(const SelectCore& s, SelectLayout* layout) {
  SelectLayout local;
  SelectLayout& lay = layout != nullptr ? *layout : local;
  lay.item_offsets.clear();
  lay.joined_offsets.assign(s.options.size(), -1);
  lay.joined_items.assign(s.options.size(), -1);

  // joinedload options that apply (their owner is a selected entity), each with the item it loads for.
  struct Eager {
    std::size_t option;
    int item;
  };
  std::vector<Eager> eager;
  bool eager_collection = false;
  for (std::size_t o = 0; o < s.options.size(); ++o) {
    const auto& opt = s.options[o];
    if (opt.kind != LoaderOption::Kind::kJoined) continue;
    for (std::size_t i = 0; i < s.items.size(); ++i) {
      if (s.items[i].entity == opt.owner) {
        eager.push_back({o, static_cast<int>(i)});
        eager_collection = eager_collection || opt.owner->relationships[opt.relationship].many;
        break;
      }
    }
  }
  // A joined collection repeats each parent once per child, so LIMIT/OFFSET must count parents: the query as
  // written becomes a subquery (its columns labelled c<n>, its ORDER BY terms o<k>) and the collections are
  // joined to it outside, ordered as inside (SQLAlchemy does the same).
  const bool wrap = eager_collection && (s.limit || s.offset);
  const std::string anon = quote("anon_1");
  auto label = [](char prefix, std::size_t n) { return " AS " + quote(fmt::format("{}{}", prefix, n)); };

  SqlWriter w;
  w.sql = s.distinct ? "SELECT DISTINCT " : "SELECT ";
  std::string outer_columns;  // wrap: the subquery's columns, as the outer SELECT lists them
  int offset = 0;
  std::vector<const EntityInfo*> froms;
  for (std::size_t i = 0; i < s.items.size(); ++i) {
    if (i > 0) w.sql += ", ";
    lay.item_offsets.push_back(offset);
    const auto& item = s.items[i];
    const int width = item.entity != nullptr ? static_cast<int>(item.entity->columns.size()) : 1;
    if (item.entity != nullptr) {
      if (wrap) {
        for (std::size_t c = 0; c < item.entity->columns.size(); ++c) {
          if (c > 0) w.sql += ", ";
          w.sql += qualified(item.entity->table, *item.entity, c) + label('c', static_cast<std::size_t>(offset) + c);
        }
      } else {
        w.entity_columns(*item.entity, item.entity->table);
      }
      if (!contains(froms, item.entity)) froms.push_back(item.entity);
    } else {
      w.expr(*item.expr, false);
      if (wrap) w.sql += label('c', static_cast<std::size_t>(offset));
      collect_entities(*item.expr, froms);
    }
    for (int c = 0; c < width; ++c) {
      if (!outer_columns.empty()) outer_columns += ", ";
      outer_columns += anon + "." + quote(fmt::format("c{}", offset + c));
    }
    offset += width;
  }
  if (wrap) {
    for (std::size_t k = 0; k < s.order_by.size(); ++k) {
      w.sql += ", ";
      w.expr(*s.order_by[k].expr, true);
      w.sql += label('o', k);
    }
  }
  // joinedload: LEFT OUTER JOIN <target> AS <target>_<n>, its columns after the items'.
  std::string eager_columns;
  std::string eager_joins;
  for (const Eager& e : eager) {
    const auto& opt = s.options[e.option];
    const auto& rel = opt.owner->relationships[opt.relationship];
    const EntityInfo& target = rel.target();
    const EntityInfo& child = rel.child();
    std::string alias = fmt::format("{}_{}", target.table, e.option + 1);
    for (std::size_t c = 0; c < target.columns.size(); ++c) eager_columns += ", " + qualified(alias, target, c);
    lay.joined_offsets[e.option] = offset;
    lay.joined_items[e.option] = e.item;
    offset += static_cast<int>(target.columns.size());
    // The owner's side of ON: its table, or its column in the subquery.
    auto owner_column = [&](std::size_t column) {
      if (!wrap) return qualified(opt.owner->table, *opt.owner, column);
      return anon + "." + quote(fmt::format("c{}", lay.item_offsets[static_cast<std::size_t>(e.item)] + static_cast<int>(column)));
    };
    if (rel.secondary != nullptr) {
      // Many-to-many: owner → association row → target, both outer so owners without links stay.
      const EntityInfo& sec = rel.secondary();
      std::string sec_alias = fmt::format("{}_{}", sec.table, e.option + 1);
      eager_joins += fmt::format(" LEFT OUTER JOIN {} AS {} ON {} = {}", quote(sec.table), quote(sec_alias),
                                 qualified(sec_alias, sec, 0), owner_column(single_pk(*opt.owner)));
      eager_joins += fmt::format(" LEFT OUTER JOIN {} AS {} ON {} = {}", quote(target.table), quote(alias),
                                 qualified(alias, target, single_pk(target)), qualified(sec_alias, sec, 1));
      continue;
    }
    std::size_t fk = rel.fk_column();
    std::string parent_pk =
        rel.many ? owner_column(single_pk(*opt.owner)) : qualified(alias, target, single_pk(target));
    std::string child_fk = rel.many ? qualified(alias, child, fk) : owner_column(fk);
    eager_joins += fmt::format(" LEFT OUTER JOIN {} AS {} ON {} = {}", quote(target.table), quote(alias), parent_pk,
                               child_fk);
  }
  if (!wrap) w.sql += eager_columns;
  // FROM: what the SELECT list names, less what is joined, plus what only WHERE names.
  std::vector<const EntityInfo*> joined;
  for (const auto& j : s.joins) joined.push_back(j.target);
  std::vector<const EntityInfo*> where_entities;
  for (const auto& n : s.where) collect_entities(*n, where_entities);
  for (const EntityInfo* e : where_entities) {
    if (!contains(froms, e)) froms.push_back(e);
  }
  std::vector<const EntityInfo*> from_list;
  for (const EntityInfo* e : froms) {
    if (!contains(joined, e) || e == froms.front()) from_list.push_back(e);
  }
  if (!from_list.empty()) {
    w.sql += " FROM ";
    for (std::size_t i = 0; i < from_list.size(); ++i) {
      if (i > 0) w.sql += ", ";
      w.sql += quote(from_list[i]->table);
    }
  }
  std::vector<const EntityInfo*> present = from_list;
  for (const auto& j : s.joins) {
    NodePtr on = j.on ? j.on : derive_on(*j.target, present);
    w.sql += j.outer ? " LEFT OUTER JOIN " : " JOIN ";
    w.sql += quote(j.target->table) + " ON ";
    w.expr(*on, false);
    present.push_back(j.target);
  }
  if (!wrap) w.sql += eager_joins;
  if (!s.where.empty()) {
    w.sql += " WHERE ";
    w.conjunction(s.where);
  }
  if (!s.group_by.empty()) {
    w.sql += " GROUP BY ";
    for (std::size_t i = 0; i < s.group_by.size(); ++i) {
      if (i > 0) w.sql += ", ";
      w.expr(*s.group_by[i], false);
    }
  }
  if (!s.having.empty()) {
    w.sql += " HAVING ";
    w.conjunction(s.having);
  }
  // ORDER BY: the expressions, or (inside the subquery and outside it) the o<k> columns standing for them.
  auto order_by = [&](const std::string& qualifier) {
    if (s.order_by.empty()) return;
    w.sql += " ORDER BY ";
    for (std::size_t k = 0; k < s.order_by.size(); ++k) {
      if (k > 0) w.sql += ", ";
      if (wrap) {
        w.sql += qualifier + quote(fmt::format("o{}", k));
      } else {
        w.expr(*s.order_by[k].expr, true);
      }
      if (!s.order_by[k].bare) w.sql += s.order_by[k].descending ? " DESC" : " ASC";
    }
  };
  order_by("");
  if (s.limit) w.sql += " LIMIT " + w.bind(client::Value(*s.limit));
  if (s.offset) w.sql += " OFFSET " + w.bind(client::Value(*s.offset));
  if (wrap) {
    std::string inner = std::move(w.sql);
    w.sql = "SELECT " + outer_columns + eager_columns + " FROM (" + inner + ") AS " + anon + eager_joins;
    order_by(anon + ".");
  }
  return Compiled{std::move(w.sql), std::move(w.params)};
}

Compiled compile_dml(const DmlCore& s, bool returning_pk) {
  SqlWriter w;
  const EntityInfo& e = *s.entity;
  if (s.is_delete) {
    w.sql = "DELETE FROM " + quote(e.table);
  } else {
    if (s.values.empty()) throw client::ArgumentError("update(): no values() to SET");
    w.sql = "UPDATE " + quote(e.table) + " SET ";
    for (std::size_t i = 0; i < s.values.size(); ++i) {
      if (i > 0) w.sql += ", ";
      w.sql += quote(e.columns[s.values[i].first].name) + " = ";
      w.expr(*s.values[i].second, true);
    }
  }
  if (!s.where.empty()) {
    w.sql += " WHERE ";
    w.conjunction(s.where);
  }
  if (returning_pk) {
    w.sql += " RETURNING ";
    for (std::size_t i = 0; i < e.pks.size(); ++i) w.sql += (i == 0 ? "" : ", ") + qualified(e.table, e, e.pks[i]);
  }
  return Compiled{std::move(w.sql), std::move(w.params)};
}

}  // namespace pooler::orm::detail
