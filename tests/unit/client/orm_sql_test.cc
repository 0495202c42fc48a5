// The ORM's SQL compiler without a server: the exact text and parameters of every select()/update()/delete_()
// feature, DDL from metadata<…>(), and the compile-time type checks of mappings and comparisons.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/client/orm_models.h"

// Refers to a table with a composite key (not supported as a relationship's target).
struct Badge {
  std::int64_t id{};
  std::int64_t user_id{};
  pooler::orm::One<pooler::test::orm_models::Membership> membership{};
};
template <>
struct pooler::orm::mapping<Badge> {
  static constexpr std::string_view table = "badges";
  static inline const auto columns = std::tuple{
      column(&Badge::id, "id", BigInteger).primary_key(),
      column(&Badge::user_id, "user_id", BigInteger),
  };
  static inline const auto relationships = std::tuple{relationship(&Badge::membership, &Badge::user_id)};
};

namespace pooler::test {
namespace {

using namespace pooler::orm;
using orm_models::Comment;
using orm_models::Odd;
using orm_models::Post;
using orm_models::User;

const std::string kUserColumns =
    R"("users"."id", "users"."name", "users"."email", "users"."is_active", "users"."nickname", "users"."created_at")";
const std::string kPostColumns = R"("posts"."id", "posts"."title", "posts"."author_id", "posts"."score")";

// Parameters as SQL-ish text (strings quoted), with their type OIDs.
std::vector<std::string> shown(const Compiled& c) {
  std::vector<std::string> out;
  for (const auto& v : c.params) out.push_back(v.repr());
  return out;
}
using Strings = std::vector<std::string>;

// --- compile-time checks ---------------------------------------------------------------------------------
static_assert(MapsTo<BigIntegerType, std::int64_t>);
static_assert(MapsTo<TextType, std::optional<std::string>>);
static_assert(!MapsTo<BigIntegerType, std::string>);
static_assert(!MapsTo<IntegerType, std::int64_t>);
static_assert(!MapsTo<BooleanType, int>);
static_assert(Mapped<User> && !Mapped<int>);
template <class L, class V>
concept CanCompare = requires(const Expr<L>& l, const V& v) { l == v; };
static_assert(CanCompare<std::string, const char*> && CanCompare<std::int64_t, int>);
static_assert(!CanCompare<std::string, int>);          // a text column against a number does not compile
static_assert(!CanCompare<std::int64_t, std::string>);
static_assert(!CanCompare<bool, Expr<std::string>>);
static_assert(CanCompare<std::int64_t, Expr<std::int32_t>>);
template <class M>
concept CanLike = requires(const ColumnExpr<M>& c) { c.like("x"); };
static_assert(CanLike<std::string> && CanLike<std::optional<std::string>> && !CanLike<std::int64_t>);
static_assert(std::same_as<decltype(select(func::count(&User::id)))::row_type, std::tuple<std::int64_t>>);
static_assert(std::same_as<decltype(select(func::sum(&Post::score)))::row_type, std::tuple<std::optional<std::int32_t>>>);
static_assert(std::same_as<decltype(select(func::avg(&Post::score)))::row_type, std::tuple<std::optional<double>>>);
static_assert(std::same_as<decltype(select<User, Post>())::row_type,
                           std::tuple<std::shared_ptr<User>, std::shared_ptr<Post>>>);
static_assert(std::same_as<decltype(select<User>(func::count(&Post::id)))::row_type,
                           std::tuple<std::shared_ptr<User>, std::int64_t>>);

// select<User>() lists every mapped column, qualified and quoted.
TEST(OrmSql, SelectEntity) {
  auto c = select<User>().compile();
  EXPECT_EQ(c.sql, "SELECT " + kUserColumns + " FROM \"users\"");
  EXPECT_TRUE(c.params.empty());
}

// where ==, order_by desc, limit: values (including LIMIT) are parameters with the column's type.
TEST(OrmSql, WhereOrderLimit) {
  auto c = select<User>().where(col(&User::is_active) == true).order_by(desc(&User::id)).limit(10).compile();
  EXPECT_EQ(c.sql, "SELECT " + kUserColumns +
                       R"( FROM "users" WHERE "users"."is_active" = $1 ORDER BY "users"."id" DESC LIMIT $2)");
  EXPECT_EQ(shown(c), (Strings{"'t'", "10"}));
  EXPECT_EQ(c.params[0].type_oid(), client::oid::kBool);
  EXPECT_EQ(c.params[1].type_oid(), client::oid::kInt8);
}

// Every comparison operator; an int literal against a BIGINT column is sent as int8.
TEST(OrmSql, ComparisonOperators) {
  auto c = select(&User::id)
               .where(col(&User::id) != 1, col(&User::id) < 2, col(&User::id) <= 3, col(&User::id) > 4,
                      col(&User::id) >= 5)
               .compile();
  EXPECT_EQ(c.sql,
            R"(SELECT "users"."id" FROM "users" WHERE "users"."id" != $1 AND "users"."id" < $2 AND )"
            R"("users"."id" <= $3 AND "users"."id" > $4 AND "users"."id" >= $5)");
  EXPECT_EQ(shown(c), (Strings{"1", "2", "3", "4", "5"}));
  for (const auto& p : c.params) EXPECT_EQ(p.type_oid(), client::oid::kInt8);
}

// or_ with like nests in parentheses inside AND; not_ wraps; && / || / ! spell the same.
TEST(OrmSql, BooleanCombinators) {
  auto c = select(&User::name)
               .where(or_(col(&User::name) == "root", col(&User::email).like("%@admin%")),
                      not_(col(&User::is_active) == false))
               .compile();
  EXPECT_EQ(c.sql,
            R"(SELECT "users"."name" FROM "users" WHERE ("users"."name" = $1 OR "users"."email" LIKE $2) AND )"
            R"(NOT ("users"."is_active" = $3))");
  EXPECT_EQ(shown(c), (Strings{"'root'", "'%@admin%'", "'f'"}));
  auto d = select(&User::name)
               .where((col(&User::name) == "a" || col(&User::name) == "b") && !(col(&User::id) > 3))
               .compile();
  EXPECT_EQ(d.sql, R"(SELECT "users"."name" FROM "users" WHERE ("users"."name" = $1 OR "users"."name" = $2) AND )"
                   R"(NOT ("users"."id" > $3))");
  auto e = select(&User::name).where(and_(col(&User::id) > 1, or_(col(&User::id) < 0, col(&User::id) == 9))).compile();
  EXPECT_EQ(e.sql, R"(SELECT "users"."name" FROM "users" WHERE "users"."id" > $1 AND ("users"."id" < $2 OR )"
                   R"("users"."id" = $3))");
}

// in_ (one parameter per value; empty matches nothing), is_(nullptr), == nullopt, ilike, between.
TEST(OrmSql, InNullLikeBetween) {
  auto c = select(&User::id)
               .where(col(&User::id).in_({1, 2, 3}), col(&User::nickname).is_(nullptr),
                      col(&User::email).is_not(nullptr), col(&User::name).ilike("A%"), col(&User::id).between(10, 20))
               .compile();
  EXPECT_EQ(c.sql,
            R"(SELECT "users"."id" FROM "users" WHERE "users"."id" IN ($1, $2, $3) AND "users"."nickname" IS NULL )"
            R"(AND "users"."email" IS NOT NULL AND "users"."name" ILIKE $4 AND "users"."id" BETWEEN $5 AND $6)");
  EXPECT_EQ(shown(c), (Strings{"1", "2", "3", "'A%'", "10", "20"}));
  std::vector<std::int64_t> none;
  auto d = select(&User::id).where(col(&User::id).in_(none), col(&User::nickname) == std::nullopt).compile();
  EXPECT_EQ(d.sql, R"(SELECT "users"."id" FROM "users" WHERE false AND "users"."nickname" IS NULL)");
  auto e = select(&User::id).where(col(&User::nickname) != std::nullopt, col(&User::nickname) == "x").compile();
  EXPECT_EQ(e.sql, R"(SELECT "users"."id" FROM "users" WHERE "users"."nickname" IS NOT NULL AND "users"."nickname" = $1)");
}

// Joins: explicit ON, along a relationship (either side), derived from the foreign key, outer.
TEST(OrmSql, Joins) {
  auto explicit_on = select<User, Post>().join<Post>(col(&User::id) == col(&Post::author_id)).compile();
  EXPECT_EQ(explicit_on.sql, "SELECT " + kUserColumns + ", " + kPostColumns +
                                 R"( FROM "users" JOIN "posts" ON "users"."id" = "posts"."author_id")");
  auto by_relationship = select<User, Post>().join(&User::posts).compile();
  EXPECT_EQ(by_relationship.sql, explicit_on.sql);
  auto derived = select<User, Post>().join<Post>().compile();
  EXPECT_EQ(derived.sql, explicit_on.sql);
  auto outer = select<User>().outerjoin(&User::posts).where(col(&Post::title) == "x").compile();
  EXPECT_EQ(outer.sql, "SELECT " + kUserColumns +
                           R"( FROM "users" LEFT OUTER JOIN "posts" ON "users"."id" = "posts"."author_id" WHERE )"
                           R"("posts"."title" = $1)");
  auto back = select(&Post::title).join(&Post::author).outerjoin<Comment>().compile();
  EXPECT_EQ(back.sql, R"(SELECT "posts"."title" FROM "posts" JOIN "users" ON "users"."id" = "posts"."author_id" )"
                      R"(LEFT OUTER JOIN "comments" ON "posts"."id" = "comments"."post_id")");
  EXPECT_THROW((void)select<User>().join<Comment>().compile(), client::InvalidRequestError);
}

// Aggregates, group_by, having, order by an aggregate, offset; count(*).
TEST(OrmSql, AggregatesGroupByHaving) {
  auto c = select(&User::name, func::count(&Post::id))
               .join(&User::posts)
               .group_by(&User::name)
               .having(func::count(&Post::id) > 1)
               .order_by(desc(func::count(&Post::id)), &User::name)
               .offset(5)
               .compile();
  EXPECT_EQ(c.sql, R"(SELECT "users"."name", count("posts"."id") FROM "users" JOIN "posts" ON "users"."id" = )"
                   R"("posts"."author_id" GROUP BY "users"."name" HAVING count("posts"."id") > $1 ORDER BY )"
                   R"(count("posts"."id") DESC, "users"."name" OFFSET $2)");
  EXPECT_EQ(shown(c), (Strings{"1", "5"}));
  auto f = select(func::count(), func::sum(&Post::score), func::avg(&Post::score), func::min(&Post::score),
                  func::max(&Post::score))
               .where(col(&Post::author_id) == 7)
               .compile();
  EXPECT_EQ(f.sql, R"(SELECT count(*), sum("posts"."score"), avg("posts"."score"), min("posts"."score"), )"
                   R"(max("posts"."score") FROM "posts" WHERE "posts"."author_id" = $1)");
  auto n = select(func::count(&User::id)).where(col(&User::is_active) == true).distinct().compile();
  EXPECT_EQ(n.sql, R"(SELECT DISTINCT count("users"."id") FROM "users" WHERE "users"."is_active" = $1)");
}

// update<T>() and delete_<T>(): SET values and WHERE terms all bound.
TEST(OrmSql, UpdateDelete) {
  auto u = update<User>().where(col(&User::name) == "ann").values(&User::is_active, false).values(&User::nickname, "a").compile();
  EXPECT_EQ(u.sql, R"(UPDATE "users" SET "is_active" = $1, "nickname" = $2 WHERE "users"."name" = $3)");
  EXPECT_EQ(shown(u), (Strings{"'f'", "'a'", "'ann'"}));
  auto bump = update<Post>().values(&Post::score, col(&Post::score)).compile();
  EXPECT_EQ(bump.sql, R"(UPDATE "posts" SET "score" = "posts"."score")");
  auto d = delete_<Post>().where(col(&Post::score) < 0).where(col(&Post::title).like("tmp%")).compile();
  EXPECT_EQ(d.sql, R"(DELETE FROM "posts" WHERE "posts"."score" < $1 AND "posts"."title" LIKE $2)");
  EXPECT_EQ(shown(d), (Strings{"0", "'tmp%'"}));
  EXPECT_EQ(delete_<Post>().compile().sql, R"(DELETE FROM "posts")");
  EXPECT_THROW((void)update<Post>().compile(), client::ArgumentError);
}

// Identifiers are always quoted, embedded quotes doubled; a value that looks like SQL stays a parameter.
TEST(OrmSql, QuotingAndInjection) {
  auto c = select<Odd>().where(col(&Odd::select) == "'; DROP TABLE users; --").compile();
  EXPECT_EQ(c.sql, R"(SELECT "odd ""table"""."key", "odd ""table"""."select" FROM "odd ""table""" WHERE )"
                   R"("odd ""table"""."select" = $1)");
  EXPECT_EQ(*c.params[0].data(), "'; DROP TABLE users; --");
}

// joinedload adds an aliased LEFT OUTER JOIN and its columns; selectinload leaves the main query alone.
TEST(OrmSql, LoaderOptions) {
  auto j = select<User>().options(joinedload(&User::posts)).compile();
  EXPECT_EQ(j.sql, "SELECT " + kUserColumns +
                       R"(, "posts_1"."id", "posts_1"."title", "posts_1"."author_id", "posts_1"."score" FROM "users" )"
                       R"(LEFT OUTER JOIN "posts" AS "posts_1" ON "users"."id" = "posts_1"."author_id")");
  auto m = select<Post>().options(joinedload(&Post::author)).compile();
  EXPECT_EQ(m.sql, "SELECT " + kPostColumns + R"(, "users_1"."id", "users_1"."name", "users_1"."email", )"
                   R"("users_1"."is_active", "users_1"."nickname", "users_1"."created_at" FROM "posts" LEFT OUTER )"
                   R"(JOIN "users" AS "users_1" ON "users_1"."id" = "posts"."author_id")");
  EXPECT_EQ(select<User>().options(selectinload(&User::posts)).compile().sql, select<User>().compile().sql);
}

// joinedload of a collection with LIMIT/OFFSET: the limited query becomes a subquery with labelled columns
// (ORDER BY terms too), the collection is joined outside it and the outer query keeps the inner order; without
// LIMIT/OFFSET, or for a many-to-one, the query stays flat.
TEST(OrmSql, JoinedCollectionUnderLimitIsJoinedOutsideASubquery) {
  EXPECT_EQ(select<Post>().options(joinedload(&Post::author)).limit(2).compile().sql.find("anon_1"), std::string::npos);
  auto j = select<User>()
               .options(joinedload(&User::posts))
               .where(col(&User::is_active) == true)
               .order_by(col(&User::name).desc(), &User::id)
               .limit(2)
               .offset(4)
               .compile();
  EXPECT_EQ(j.sql,
            R"(SELECT "anon_1"."c0", "anon_1"."c1", "anon_1"."c2", "anon_1"."c3", "anon_1"."c4", "anon_1"."c5", )"
            R"("posts_1"."id", "posts_1"."title", "posts_1"."author_id", "posts_1"."score" FROM (SELECT )"
            R"("users"."id" AS "c0", "users"."name" AS "c1", "users"."email" AS "c2", "users"."is_active" AS "c3", )"
            R"("users"."nickname" AS "c4", "users"."created_at" AS "c5", "users"."name" AS "o0", "users"."id" AS "o1" )"
            R"(FROM "users" WHERE "users"."is_active" = $1 ORDER BY "o0" DESC, "o1" LIMIT $2 OFFSET $3) AS "anon_1" )"
            R"(LEFT OUTER JOIN "posts" AS "posts_1" ON "anon_1"."c0" = "posts_1"."author_id" ORDER BY )"
            R"("anon_1"."o0" DESC, "anon_1"."o1")");
  ASSERT_EQ(j.params.size(), 3u);
  EXPECT_EQ(*j.params[1].data(), "2");
  EXPECT_EQ(*j.params[2].data(), "4");
  EXPECT_EQ(select<User>().options(joinedload(&User::posts)).order_by(&User::id).compile().sql.find("anon_1"),
            std::string::npos);
}

// A composite primary key: one PRIMARY KEY constraint over both columns, and no sequence for either (as
// SQLAlchemy, only a single integer key autoincrements); a relationship referring to it is refused when used.
TEST(OrmSql, CompositePrimaryKeyDdl) {
  EXPECT_EQ(metadata<orm_models::Membership>().create_statements(),
            Strings{R"(CREATE TABLE IF NOT EXISTS "memberships" ("user_id" BIGINT NOT NULL, "org_id" INTEGER NOT )"
                    R"(NULL, "role" TEXT NOT NULL, PRIMARY KEY ("user_id", "org_id")))"});
  EXPECT_THROW((void)select<Badge>().options(joinedload(&Badge::membership)).compile(), ArgumentError);
  EXPECT_THROW((void)select<Badge>().join(&Badge::membership), ArgumentError);
}

// Builders are values: refining a statement leaves the original as it was.
TEST(OrmSql, StatementsAreImmutable) {
  auto base = select<User>();
  auto narrowed = base.where(col(&User::id) == 1);
  EXPECT_EQ(base.compile().sql, "SELECT " + kUserColumns + " FROM \"users\"");
  EXPECT_NE(narrowed.compile().sql, base.compile().sql);
}

// DDL: tables in foreign-key order whatever the listing order; types, NOT NULL from std::optional, SERIAL keys,
// defaults, UNIQUE, FOREIGN KEY … ON DELETE, indexes; drop in reverse.
TEST(OrmSql, MetadataDdl) {
  auto md = metadata<Comment, Post, User, Odd>();
  EXPECT_EQ(md.sorted_tables(), (Strings{"users", "posts", "comments", "odd \"table\""}));
  EXPECT_EQ(md.create_statements(),
            (Strings{
                R"(CREATE TABLE IF NOT EXISTS "users" ("id" BIGSERIAL NOT NULL, "name" VARCHAR(100) NOT NULL, )"
                R"("email" VARCHAR(255) NOT NULL, "is_active" BOOLEAN DEFAULT true NOT NULL, "nickname" TEXT, )"
                R"("created_at" TIMESTAMP WITH TIME ZONE DEFAULT now(), PRIMARY KEY ("id"), UNIQUE ("email")))",
                R"(CREATE TABLE IF NOT EXISTS "posts" ("id" BIGSERIAL NOT NULL, "title" TEXT NOT NULL, "author_id" )"
                R"(BIGINT NOT NULL, "score" INTEGER NOT NULL, PRIMARY KEY ("id"), FOREIGN KEY ("author_id") )"
                R"(REFERENCES "users" ("id")))",
                R"(CREATE TABLE IF NOT EXISTS "comments" ("id" BIGSERIAL NOT NULL, "post_id" BIGINT NOT NULL, )"
                R"("body" TEXT, PRIMARY KEY ("id"), FOREIGN KEY ("post_id") REFERENCES "posts" ("id") ON DELETE )"
                R"(CASCADE))",
                R"(CREATE TABLE IF NOT EXISTS "odd ""table""" ("key" INTEGER NOT NULL, "select" TEXT, PRIMARY KEY )"
                R"(("key")))",
                R"(CREATE INDEX IF NOT EXISTS "ix_posts_author_id" ON "posts" ("author_id"))",
            }));
  EXPECT_EQ(md.drop_statements(), (Strings{R"(DROP TABLE IF EXISTS "odd ""table""")", R"(DROP TABLE IF EXISTS "comments")",
                                           R"(DROP TABLE IF EXISTS "posts")", R"(DROP TABLE IF EXISTS "users")"}));
}

// A member that is not mapped is refused when the expression is built.
TEST(OrmSql, UnmappedMemberRefused) {
  EXPECT_THROW((void)col(&User::posts), client::ArgumentError);
}

}  // namespace
}  // namespace pooler::test
