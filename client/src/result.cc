// Result, Row and Field over a shared PGresult.
#include <cstdlib>

#include <fmt/format.h>
#include <libpq-fe.h>

#include "pooler/result.hpp"

namespace pooler::client {
namespace detail {

struct ResultData {
  std::shared_ptr<PGresult> pg;
  std::vector<int> cols;  // the result's columns, in the order shown (narrowed by columns())
  int rows = 0;

  [[nodiscard]] int pg_column(int column) const { return cols[static_cast<std::size_t>(column)]; }
  [[nodiscard]] int find(std::string_view name) const {
    for (std::size_t i = 0; i < cols.size(); ++i) {
      if (name == PQfname(pg.get(), cols[i])) return static_cast<int>(i);
    }
    return -1;
  }
};

}  // namespace detail

namespace {

std::shared_ptr<const detail::ResultData> make_data(PGresult* r) {
  auto d = std::make_shared<detail::ResultData>();
  d->pg.reset(r, PQclear);
  if (r != nullptr) {
    int n = PQnfields(r);
    d->cols.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) d->cols.push_back(i);
    d->rows = PQntuples(r);
  }
  return d;
}

}  // namespace

// --- Field ----------------------------------------------------------------------------------------------

std::string_view Field::name() const { return PQfname(data_->pg.get(), data_->pg_column(column_)); }
bool Field::is_null() const { return PQgetisnull(data_->pg.get(), row_, data_->pg_column(column_)) != 0; }
std::string_view Field::view() const {
  int c = data_->pg_column(column_);
  return {PQgetvalue(data_->pg.get(), row_, c), static_cast<std::size_t>(PQgetlength(data_->pg.get(), row_, c))};
}
std::uint32_t Field::type_oid() const { return PQftype(data_->pg.get(), data_->pg_column(column_)); }

void Field::null_error() const {
  throw ConversionError(fmt::format("column {} (\"{}\", type {}) is NULL in row {}; read it as std::optional<T>",
                                    column_, name(), type_name(type_oid()), row_));
}

void Field::rethrow_conversion(const ConversionError& e) const {
  throw ConversionError(fmt::format("column {} (\"{}\") in row {}: {}", column_, name(), row_, e.what()));
}

// --- Row ------------------------------------------------------------------------------------------------

std::size_t Row::size() const { return data_->cols.size(); }
Field Row::operator[](std::size_t column) const { return Field(data_, row_, static_cast<int>(column)); }
Field Row::operator[](std::string_view name) const { return at(name); }

Field Row::at(std::size_t column) const {
  if (column >= size()) {
    throw InvalidRequestError(fmt::format("column index {} out of range: the row has {} columns", column, size()));
  }
  return Field(data_, row_, static_cast<int>(column));
}

Field Row::at(std::string_view name) const {
  int c = data_->find(name);
  if (c < 0) {
    std::string known;
    for (const auto& k : keys()) known += (known.empty() ? "" : ", ") + k;
    throw InvalidRequestError(fmt::format("no column named '{}' (columns: {})", name, known));
  }
  return Field(data_, row_, c);
}

std::vector<std::string> Row::keys() const {
  std::vector<std::string> k;
  for (int c : data_->cols) k.emplace_back(PQfname(data_->pg.get(), c));
  return k;
}

bool Row::contains(std::string_view name) const { return data_->find(name) >= 0; }

// --- Result ---------------------------------------------------------------------------------------------

Result::Result(pg_result* result) : data_(make_data(result)) {}
std::shared_ptr<pg_result> Result::driver_result() const { return data_ ? data_->pg : nullptr; }

std::size_t Result::size() const { return data_ ? static_cast<std::size_t>(data_->rows) : 0; }

Row Result::row(int index) const {
  if (index < 0 || static_cast<std::size_t>(index) >= size()) {
    throw InvalidRequestError(fmt::format("row index {} out of range: the result has {} rows", index, size()));
  }
  return Row(data_, index);
}

std::int64_t Result::rowcount() const {
  if (!data_ || !data_->pg) return -1;
  const char* n = PQcmdTuples(data_->pg.get());
  if (n == nullptr || *n == '\0') return returns_rows() ? static_cast<std::int64_t>(size()) : -1;
  return std::strtoll(n, nullptr, 10);
}

bool Result::returns_rows() const {
  return data_ && data_->pg && PQresultStatus(data_->pg.get()) == PGRES_TUPLES_OK;
}

std::vector<std::string> Result::keys() const {
  std::vector<std::string> k;
  if (!data_) return k;
  for (int c : data_->cols) k.emplace_back(PQfname(data_->pg.get(), c));
  return k;
}

std::size_t Result::column_count() const { return data_ ? data_->cols.size() : 0; }

std::vector<Row> Result::all() const {
  std::vector<Row> rows;
  rows.reserve(size());
  for (int i = 0; i < static_cast<int>(size()); ++i) rows.emplace_back(data_, i);
  return rows;
}

std::optional<Row> Result::first() const {
  if (empty()) return std::nullopt;
  return Row(data_, 0);
}

Row Result::one() const {
  if (empty()) throw NoResultFound("No row was found when one was required");
  if (size() > 1) throw MultipleResultsFound("Multiple rows were found when exactly one was required");
  return Row(data_, 0);
}

std::optional<Row> Result::one_or_none() const {
  if (empty()) return std::nullopt;
  if (size() > 1) throw MultipleResultsFound("Multiple rows were found when one or none was required");
  return Row(data_, 0);
}

std::vector<RowMapping> Result::mappings() const {
  std::vector<RowMapping> m;
  m.reserve(size());
  for (int i = 0; i < static_cast<int>(size()); ++i) m.emplace_back(Row(data_, i));
  return m;
}

Result Result::columns(std::initializer_list<std::string_view> names) const {
  auto d = std::make_shared<detail::ResultData>();
  if (data_) {
    d->pg = data_->pg;
    d->rows = data_->rows;
  }
  for (std::string_view n : names) {
    int c = data_ ? data_->find(n) : -1;
    if (c < 0) throw InvalidRequestError(fmt::format("no column named '{}'", n));
    d->cols.push_back(data_->pg_column(c));
  }
  return Result(std::shared_ptr<const detail::ResultData>(std::move(d)));
}

Result Result::columns(std::initializer_list<int> positions) const {
  auto d = std::make_shared<detail::ResultData>();
  if (data_) {
    d->pg = data_->pg;
    d->rows = data_->rows;
  }
  for (int p : positions) {
    if (!data_ || p < 0 || static_cast<std::size_t>(p) >= data_->cols.size()) {
      throw InvalidRequestError(fmt::format("column index {} out of range", p));
    }
    d->cols.push_back(data_->pg_column(p));
  }
  return Result(std::shared_ptr<const detail::ResultData>(std::move(d)));
}

}  // namespace pooler::client
