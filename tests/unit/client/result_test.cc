// Result, Row and Field accessors over PGresults built in memory with libpq's result-construction API.
#include <gtest/gtest.h>

#include <libpq-fe.h>

#include "pooler/client.hpp"

namespace pooler {
namespace {

// A TUPLES_OK result with columns (id int8, name text, score float8) and the given rows; nullopt = NULL.
Result make_result(const std::vector<std::array<std::optional<std::string>, 3>>& rows) {
  PGresult* r = PQmakeEmptyPGresult(nullptr, PGRES_TUPLES_OK);
  PGresAttDesc attrs[3] = {};
  const char* names[3] = {"id", "name", "score"};
  const Oid types[3] = {20, 25, 701};
  for (int i = 0; i < 3; ++i) {
    attrs[i].name = const_cast<char*>(names[i]);
    attrs[i].typid = types[i];
    attrs[i].typlen = -1;
    attrs[i].atttypmod = -1;
  }
  EXPECT_TRUE(PQsetResultAttrs(r, 3, attrs));
  for (int row = 0; row < static_cast<int>(rows.size()); ++row) {
    for (int col = 0; col < 3; ++col) {
      const auto& v = rows[static_cast<std::size_t>(row)][static_cast<std::size_t>(col)];
      EXPECT_TRUE(PQsetvalue(r, row, col, v ? const_cast<char*>(v->c_str()) : nullptr, v ? static_cast<int>(v->size()) : -1));
    }
  }
  return Result(r);
}

// Iteration, indexing by position and name, typed gets and tuples.
TEST(ClientResult, RowAccess) {
  Result r = make_result({{"1", "ann", "1.5"}, {"2", "bob", std::nullopt}});
  EXPECT_EQ(r.size(), 2u);
  EXPECT_EQ(r.keys(), (std::vector<std::string>{"id", "name", "score"}));
  EXPECT_TRUE(r.returns_rows());
  std::vector<std::string> names;
  for (const Row& row : r) names.push_back(row.get<std::string>("name"));
  EXPECT_EQ(names, (std::vector<std::string>{"ann", "bob"}));
  Row first = r[0];
  EXPECT_EQ(first.get<std::int64_t>(0), 1);
  EXPECT_EQ(first.get<double>("score"), 1.5);
  EXPECT_EQ(first["name"].view(), "ann");
  EXPECT_EQ(first[1].name(), "name");
  EXPECT_EQ(first[0].type_oid(), 20u);
  auto [id, name, score] = r[1].as_tuple<std::int64_t, std::string, std::optional<double>>();
  EXPECT_EQ(id, 2);
  EXPECT_EQ(name, "bob");
  EXPECT_EQ(score, std::nullopt);
  EXPECT_TRUE(r[1]["score"].is_null());
  EXPECT_TRUE(first.contains("id"));
  EXPECT_FALSE(first.contains("ID"));  // exact names, no case folding
}

// Rows and fields keep the PGresult alive after the Result is gone (libpqxx's shared ownership).
TEST(ClientResult, RowsOutliveResult) {
  std::vector<Row> rows;
  {
    Result r = make_result({{"7", "x", "0"}});
    rows = r.all();
  }
  EXPECT_EQ(rows.at(0).get<int>("id"), 7);
}

// NULL into a non-optional, text into a number and unknown columns fail with the column named.
TEST(ClientResult, PreciseConversionErrors) {
  Result r = make_result({{"1", "ann", std::nullopt}});
  auto message = [&](auto f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message([&] { (void)r[0].get<double>("score"); }),
            "column 2 (\"score\", type float8) is NULL in row 0; read it as std::optional<T>");
  EXPECT_EQ(message([&] { (void)r[0].get<std::int64_t>("name"); }),
            "column 1 (\"name\") in row 0: cannot convert 'ann' (type text) to int64_t");
  EXPECT_EQ(message([&] { (void)r[0].get<int>("nope"); }), "no column named 'nope' (columns: id, name, score)");
  EXPECT_EQ(message([&] { (void)r[0].get<int>(3); }), "column index 3 out of range: the row has 3 columns");
  EXPECT_THROW((void)r[0].get<double>("score"), ConversionError);
  EXPECT_EQ(r[0].get<std::optional<double>>("score"), std::nullopt);
}

// first / one / one_or_none / scalar* follow SQLAlchemy's rules for zero, one and many rows.
TEST(ClientResult, CardinalityAccessors) {
  Result none = make_result({});
  Result one = make_result({{"1", "ann", "2.5"}});
  Result two = make_result({{"1", "ann", "2.5"}, {"2", "bob", "3"}});
  Result null_first = make_result({{std::nullopt, "x", "1"}});

  EXPECT_FALSE(none.first());
  EXPECT_THROW((void)none.one(), NoResultFound);
  EXPECT_FALSE(none.one_or_none());
  EXPECT_EQ(none.scalar<int>(), std::nullopt);
  EXPECT_THROW((void)none.scalar_one<int>(), NoResultFound);
  EXPECT_EQ(none.scalar_one_or_none<int>(), std::nullopt);

  EXPECT_EQ(one.one().get<std::string>(1), "ann");
  EXPECT_EQ(one.scalar_one<std::int64_t>(), 1);
  EXPECT_EQ(one.scalar_one_or_none<std::int64_t>(), 1);

  EXPECT_EQ(two.first()->get<int>(0), 1);
  EXPECT_EQ(two.scalar<int>(), 1);
  EXPECT_THROW((void)two.one(), MultipleResultsFound);
  EXPECT_THROW((void)two.one_or_none(), MultipleResultsFound);
  EXPECT_THROW((void)two.scalar_one<int>(), MultipleResultsFound);
  EXPECT_EQ(two.scalars<int>().all(), (std::vector<int>{1, 2}));
  EXPECT_EQ(two.scalars<int>().first(), 1);
  EXPECT_THROW((void)two.scalars<int>().one(), MultipleResultsFound);

  EXPECT_EQ(null_first.scalar<int>(), std::nullopt);
  EXPECT_THROW((void)null_first.scalar_one<int>(), ConversionError);
  EXPECT_EQ(null_first.scalar_one<std::optional<int>>(), std::nullopt);
}

// mappings() by name, columns() narrows and reorders.
TEST(ClientResult, MappingsAndColumns) {
  Result r = make_result({{"1", "ann", "2.5"}, {"2", "bob", "3"}});
  auto maps = r.mappings();
  ASSERT_EQ(maps.size(), 2u);
  EXPECT_EQ(maps[1].get<std::string>("name"), "bob");
  EXPECT_EQ(maps[1]["score"].view(), "3");
  EXPECT_EQ(maps[0].keys(), (std::vector<std::string>{"id", "name", "score"}));

  Result narrowed = r.columns({"score", "id"});
  EXPECT_EQ(narrowed.keys(), (std::vector<std::string>{"score", "id"}));
  EXPECT_EQ(narrowed[1].get<int>(1), 2);
  EXPECT_EQ(narrowed.scalars<double>().all(), (std::vector<double>{2.5, 3}));
  EXPECT_EQ(r.columns({1}).scalars<std::string>().all(), (std::vector<std::string>{"ann", "bob"}));
  EXPECT_THROW((void)r.columns({"nope"}), InvalidRequestError);
  EXPECT_THROW((void)r.columns({5}), InvalidRequestError);
}

// SQLSTATEs pick the DBAPI class and libpqxx-style leaves; what() carries state, message, detail and SQL.
TEST(ClientResult, ErrorHierarchyBySqlstate) {
  auto thrown = [](std::string state) -> std::exception_ptr {
    try {
      throw_db_error(ErrorInfo{.sqlstate = std::move(state), .message = "m", .detail = "d", .hint = "h", .statement = "S"});
    } catch (...) {
      return std::current_exception();
    }
  };
  auto is = [&]<class E>(const std::string& state) {
    try {
      std::rethrow_exception(thrown(state));
    } catch (const E&) {
      return true;
    } catch (...) {
      return false;
    }
  };
  EXPECT_TRUE(is.operator()<UniqueViolation>("23505"));
  EXPECT_TRUE(is.operator()<IntegrityError>("23505"));
  EXPECT_TRUE(is.operator()<IntegrityError>("23P01"));
  EXPECT_TRUE(is.operator()<ForeignKeyViolation>("23503"));
  EXPECT_TRUE(is.operator()<OperationalError>("08006"));
  EXPECT_TRUE(is.operator()<OperationalError>("57P01"));
  EXPECT_TRUE(is.operator()<SerializationFailure>("40001"));
  EXPECT_TRUE(is.operator()<OperationalError>("40001"));
  EXPECT_TRUE(is.operator()<QueryCanceled>("57014"));
  EXPECT_TRUE(is.operator()<ProgrammingError>("42501"));
  EXPECT_TRUE(is.operator()<UndefinedTable>("42P01"));
  EXPECT_TRUE(is.operator()<SyntaxError>("42601"));
  EXPECT_TRUE(is.operator()<DataError>("22012"));
  EXPECT_TRUE(is.operator()<InternalError>("25P02"));
  EXPECT_TRUE(is.operator()<NotSupportedError>("0A000"));
  EXPECT_TRUE(is.operator()<DatabaseError>("99999"));
  EXPECT_TRUE(is.operator()<InterfaceError>(""));
  EXPECT_FALSE(is.operator()<IntegrityError>("42P01"));
  try {
    std::rethrow_exception(thrown("23505"));
  } catch (const DBError& e) {
    EXPECT_EQ(e.sqlstate(), "23505");
    EXPECT_EQ(e.hint(), "h");
    EXPECT_STREQ(e.what(), "(23505) m\nDETAIL:  d\nHINT:  h\n[SQL: S]");
  }
}

}  // namespace
}  // namespace pooler
