// Many-to-many relationships through an association table (SQLAlchemy's relationship(secondary=…)): the exact
// SQL of the association statements, then round trips against a real PostgreSQL — create_all, the three
// loading strategies (statements counted through the engine's echo hook), the unit of work's association
// INSERT/DELETE, back_populates on both sides, and rollback.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "tests/client/client_fixture.h"
#include "tests/client/orm_m2m_models.h"

namespace pooler::test {
namespace {

using namespace pooler::orm;
using m2m_models::Course;
using m2m_models::Student;
using m2m_models::Tag;
using Strings = std::vector<std::string>;

Strings shown(const Compiled& c) {
  Strings out;
  for (const auto& v : c.params) out.push_back(v.repr());
  return out;
}

const std::string kCourseColumns = R"("courses"."id", "courses"."title")";
const std::string kSelectin = R"(SELECT "courses"."id", "courses"."title", "enrollments"."student_id" FROM "courses" )"
                              R"(JOIN "enrollments" ON "enrollments"."course_id" = "courses"."id" )"
                              R"(WHERE "enrollments"."student_id" = ANY($1) ORDER BY "courses"."id")";
const std::string kInsert =
    R"(INSERT INTO "enrollments" ("student_id", "course_id") VALUES ($1, $2) ON CONFLICT DO NOTHING)";
const std::string kDelete =
    R"(DELETE FROM "enrollments" WHERE "enrollments"."student_id" = $1 AND "enrollments"."course_id" = $2)";

std::size_t courses_rel() { return orm::detail::relationship_index(&Student::courses); }

// The association table comes after both tables it refers to, with a composite key and cascading foreign keys.
TEST(OrmManyToManySql, CreateAllMakesAssociationTables) {
  auto md = metadata<Student, Course, Tag>();
  EXPECT_EQ(md.sorted_tables(), (Strings{"students", "courses", "tags", "enrollments", "student_tags"}));
  auto ddl = md.create_statements();
  ASSERT_EQ(ddl.size(), 5u);
  EXPECT_EQ(ddl[3], R"(CREATE TABLE IF NOT EXISTS "enrollments" ("student_id" BIGINT NOT NULL, )"
                    R"("course_id" BIGINT NOT NULL, PRIMARY KEY ("student_id", "course_id"), )"
                    R"(FOREIGN KEY ("student_id") REFERENCES "students" ("id") ON DELETE CASCADE, )"
                    R"(FOREIGN KEY ("course_id") REFERENCES "courses" ("id") ON DELETE CASCADE))");
  EXPECT_EQ(ddl[4], R"(CREATE TABLE IF NOT EXISTS "student_tags" ("student_id" BIGINT NOT NULL, )"
                    R"("tag_id" INTEGER NOT NULL, PRIMARY KEY ("student_id", "tag_id"), )"
                    R"(FOREIGN KEY ("student_id") REFERENCES "students" ("id") ON DELETE CASCADE, )"
                    R"(FOREIGN KEY ("tag_id") REFERENCES "tags" ("id") ON DELETE CASCADE))");
  // Declared on both sides, the table is created once; dropped before the tables it refers to.
  EXPECT_EQ(md.drop_statements().front(), R"(DROP TABLE IF EXISTS "student_tags")");
  EXPECT_EQ((metadata<Course, Student>().sorted_tables().size()), 4u);
}

// selectinload's query: the targets joined with the association table, its parent key column last, keys as an
// array parameter.
TEST(OrmManyToManySql, SelectinQuery) {
  const auto& owner = orm::detail::entity_info<Student>();
  Compiled c = orm::detail::compile_select(
      orm::detail::secondary_select(owner, courses_rel(),
                                    {client::Value(std::int64_t{1}), client::Value(std::int64_t{2})}));
  EXPECT_EQ(c.sql, kSelectin);
  ASSERT_EQ(c.params.size(), 1u);
  EXPECT_EQ(*c.params[0].data(), "{\"1\",\"2\"}");
  EXPECT_EQ(c.params[0].type_oid(), client::array_oid(client::oid::kInt8));
}

// The association rows the unit of work writes: one statement per pair, every value a parameter.
TEST(OrmManyToManySql, AssociationInsertAndDelete) {
  const auto& owner = orm::detail::entity_info<Student>();
  Compiled ins = orm::detail::compile_secondary_insert(owner, courses_rel(), client::Value(std::int64_t{7}),
                                                  client::Value(std::int64_t{9}));
  EXPECT_EQ(ins.sql, kInsert);
  EXPECT_EQ(shown(ins), (Strings{"7", "9"}));
  Compiled del = orm::detail::compile_secondary_delete(owner, courses_rel(), client::Value(std::int64_t{7}),
                                                  client::Value(std::int64_t{9}));
  EXPECT_EQ(del.sql, kDelete);
  EXPECT_EQ(shown(del), (Strings{"7", "9"}));
  // From the other side the columns swap, so both sides write the same row.
  Compiled back = orm::detail::compile_secondary_insert(orm::detail::entity_info<Course>(),
                                                   orm::detail::relationship_index(&Course::students),
                                                   client::Value(std::int64_t{9}), client::Value(std::int64_t{7}));
  EXPECT_EQ(back.sql,
            R"(INSERT INTO "enrollments" ("course_id", "student_id") VALUES ($1, $2) ON CONFLICT DO NOTHING)");
}

// joinedload goes through the association table with two LEFT OUTER JOINs; with LIMIT the parents are limited
// in a subquery first.
TEST(OrmManyToManySql, Joinedload) {
  auto c = select<Student>().options(joinedload(&Student::courses)).compile();
  EXPECT_EQ(c.sql, R"(SELECT "students"."id", "students"."name", "courses_1"."id", "courses_1"."title" )"
                   R"(FROM "students" LEFT OUTER JOIN "enrollments" AS "enrollments_1" ON )"
                   R"("enrollments_1"."student_id" = "students"."id" LEFT OUTER JOIN "courses" AS "courses_1" ON )"
                   R"("courses_1"."id" = "enrollments_1"."course_id")");
  auto limited = select<Student>().options(joinedload(&Student::courses)).order_by(&Student::id).limit(2).compile();
  EXPECT_EQ(limited.sql,
            R"(SELECT "anon_1"."c0", "anon_1"."c1", "courses_1"."id", "courses_1"."title" FROM (SELECT )"
            R"("students"."id" AS "c0", "students"."name" AS "c1", "students"."id" AS "o0" FROM "students" ORDER BY )"
            R"("o0" LIMIT $1) AS "anon_1" LEFT OUTER JOIN "enrollments" AS "enrollments_1" ON )"
            R"("enrollments_1"."student_id" = "anon_1"."c0" LEFT OUTER JOIN "courses" AS "courses_1" ON )"
            R"("courses_1"."id" = "enrollments_1"."course_id" ORDER BY "anon_1"."o0")");
}

// join(&Student::courses) goes through the association table.
TEST(OrmManyToManySql, JoinAlongRelationship) {
  auto c = select<Student>().join(&Student::courses).where(col(&Course::title) == "art").compile();
  EXPECT_EQ(c.sql, R"(SELECT "students"."id", "students"."name" FROM "students" JOIN "enrollments" ON )"
                   R"("enrollments"."student_id" = "students"."id" JOIN "courses" ON "courses"."id" = )"
                   R"("enrollments"."course_id" WHERE "courses"."title" = $1)");
  EXPECT_EQ(shown(c), (Strings{"'art'"}));
}

class IntegrationOrmM2m : public ClientClusterTest {
 protected:
  void SetUp() override {
    engine_.emplace(
        create_engine(url(), {.echo = true, .echo_sink = [this](std::string_view s) { log_.emplace_back(s); }}));
    metadata<Student, Course, Tag>().drop_all(*engine_);
    metadata<Student, Course, Tag>().create_all(*engine_);
    log_.clear();
  }
  Engine& engine() { return *engine_; }
  Strings statements(std::string_view prefix) const {
    Strings out;
    for (const auto& s : log_) {
      if (s.starts_with(prefix)) out.push_back(s);
    }
    return out;
  }
  std::string db(const std::string& sql) { return cluster().psql(sql, "app"); }
  // "student:course" pairs of the association table, by name.
  std::string enrollments() {
    return db("SELECT coalesce(string_agg(s.name || ':' || c.title, ',' ORDER BY s.name, c.title), '') "
              "FROM enrollments e "
              "JOIN students s ON s.id = e.student_id JOIN courses c ON c.id = e.course_id");
  }
  // ann → {math, art}, bob → {art}, cid → {} committed; returns the student ids.
  std::vector<std::int64_t> seed() {
    Session s(engine());
    auto ann = s.add(Student{.name = "ann"});
    auto bob = s.add(Student{.name = "bob"});
    auto cid = s.add(Student{.name = "cid"});
    auto math = std::make_shared<Course>(Course{.title = "math"});
    auto art = std::make_shared<Course>(Course{.title = "art"});
    ann->courses.add(math);
    ann->courses.add(art);
    bob->courses.add(art);
    s.commit();
    log_.clear();
    return {ann->id, bob->id, cid->id};
  }

  std::optional<Engine> engine_;
  Strings log_;
};

// create_all made the association table with its key and foreign keys.
TEST_F(IntegrationOrmM2m, CreateAllCreatesAssociationTable) {
  EXPECT_EQ(db("SELECT string_agg(constraint_type, ',' ORDER BY constraint_type) FROM "
               "information_schema.table_constraints WHERE table_name = 'enrollments' AND constraint_type <> 'CHECK'"),
            "FOREIGN KEY,FOREIGN KEY,PRIMARY KEY");
  EXPECT_EQ(db("SELECT string_agg(delete_rule, ',') FROM information_schema.referential_constraints "
               "WHERE constraint_name LIKE 'enrollments%'"),
            "CASCADE,CASCADE");
}

// A pending parent with pending children: the association rows are inserted after both sides.
TEST_F(IntegrationOrmM2m, AddParentWithChildrenInsertsAssociationRows) {
  Session session(engine());
  auto ann = session.add(Student{.name = "ann"});
  ann->courses.add(Course{.title = "math"});
  ann->courses.add(Course{.title = "art"});
  session.commit();
  auto inserts = statements("INSERT");
  ASSERT_EQ(inserts.size(), 5u);
  EXPECT_TRUE(inserts[0].starts_with(R"(INSERT INTO "students")"));
  EXPECT_TRUE(inserts[2].starts_with(R"(INSERT INTO "courses")"));
  EXPECT_EQ(inserts[3], kInsert);
  EXPECT_EQ(inserts[4], kInsert);
  EXPECT_EQ(enrollments(), "ann:art,ann:math");
  // A persistent child added to a persistent parent.
  auto bob = session.add(Student{.name = "bob"});
  session.commit();
  auto art = session.scalars(select<Course>().where(col(&Course::title) == "art")).one();
  bob->courses.add(art);
  session.commit();
  EXPECT_EQ(enrollments(), "ann:art,ann:math,bob:art");
}

// selectinload: exactly two statements for all parents; the second joins the association table.
TEST_F(IntegrationOrmM2m, Selectinload) {
  seed();
  Session session(engine());
  auto students =
      session.scalars(select<Student>().options(selectinload(&Student::courses)).order_by(&Student::id)).all();
  ASSERT_EQ(students.size(), 3u);
  ASSERT_EQ(students[0]->courses.size(), 2u);
  EXPECT_EQ(students[0]->courses[0]->title, "math");  // in primary-key order
  EXPECT_EQ(students[0]->courses[1]->title, "art");
  ASSERT_EQ(students[1]->courses.size(), 1u);
  EXPECT_EQ(students[1]->courses[0].get(), students[0]->courses[1].get());  // one object per row
  EXPECT_TRUE(students[2]->courses.empty());
  auto selects = statements("SELECT");
  ASSERT_EQ(selects.size(), 2u);
  EXPECT_EQ(selects[1], kSelectin);
}

// joinedload: one statement; parents not repeated; with LIMIT the parents are counted, not the joined rows.
TEST_F(IntegrationOrmM2m, Joinedload) {
  seed();
  Session session(engine());
  auto students =
      session.scalars(select<Student>().options(joinedload(&Student::courses)).order_by(&Student::id)).all();
  ASSERT_EQ(students.size(), 3u);
  EXPECT_EQ(students[0]->courses.size(), 2u);
  EXPECT_EQ(students[1]->courses.size(), 1u);
  EXPECT_TRUE(students[2]->courses.empty());
  EXPECT_EQ(statements("SELECT").size(), 1u);
  Session other(engine());
  auto two = other.scalars(select<Student>().options(joinedload(&Student::courses)).order_by(&Student::id).limit(2))
                 .all();
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0]->courses.size(), 2u);
}

// Lazy loading on first access, from either side.
TEST_F(IntegrationOrmM2m, LazyLoading) {
  seed();
  Session session(engine());
  auto ann = session.scalars(select<Student>().where(col(&Student::name) == "ann")).one();
  log_.clear();
  ASSERT_EQ(ann->courses.size(), 2u);
  EXPECT_EQ(statements("SELECT").size(), 1u);
  auto art = ann->courses[1];
  Strings names;
  for (const auto& s : art->students) names.push_back(s->name);
  EXPECT_EQ(names, (Strings{"ann", "bob"}));
  EXPECT_EQ(art->students[0].get(), ann.get());
  // Both sides loaded hold each other: closing the session unloads such collections (C++ has no cycle
  // collector), so they read as any unloaded relationship of a detached object.
  session.close();
  EXPECT_THROW((void)ann->courses.size(), DetachedInstanceError);
  EXPECT_THROW((void)art->students.size(), DetachedInstanceError);
}

// Removing a child from the collection deletes the association row only.
TEST_F(IntegrationOrmM2m, RemoveDeletesAssociationRow) {
  seed();
  Session session(engine());
  auto ann = session.scalars(select<Student>().where(col(&Student::name) == "ann")).one();
  auto math = ann->courses[0];
  ann->courses.remove(math);
  log_.clear();
  session.commit();
  EXPECT_EQ(statements("DELETE"), (Strings{kDelete}));
  EXPECT_TRUE(statements("INSERT").empty());
  EXPECT_EQ(enrollments(), "ann:art,bob:art");
  EXPECT_EQ(db("SELECT count(*) FROM courses"), "2");
}

// Deleting a parent deletes its association rows, the children stay, and loaded collections of the other side
// forget it.
TEST_F(IntegrationOrmM2m, DeleteParentRemovesAssociationRows) {
  seed();
  Session session(engine());
  auto students =
      session.scalars(select<Student>().options(selectinload(&Student::courses)).order_by(&Student::id)).all();
  auto art = students[0]->courses[1];
  ASSERT_EQ(art->students.size(), 2u);
  session.delete_(students[0]);
  session.flush();
  EXPECT_EQ(art->students.size(), 1u);
  EXPECT_EQ(art->students[0]->name, "bob");
  session.commit();
  EXPECT_EQ(enrollments(), "bob:art");
  EXPECT_EQ(db("SELECT count(*) FROM courses"), "2");
}

// Both sides mention the pair (back_populates): one association row; flush keeps the other side's loaded
// collection in step.
TEST_F(IntegrationOrmM2m, BackPopulatesBothSidesNoDuplicates) {
  seed();
  Session session(engine());
  auto cid = session.scalars(select<Student>().where(col(&Student::name) == "cid")).one();
  auto math = session.scalars(select<Course>().where(col(&Course::title) == "math")).one();
  log_.clear();
  cid->courses.add(math);
  math->students.add(cid);  // loading math->students autoflushes cid's link first
  session.flush();
  EXPECT_EQ(statements("INSERT"), (Strings{kInsert}));
  session.commit();
  EXPECT_EQ(enrollments(), "ann:art,ann:math,bob:art,cid:math");
  // Only one side told: the other side's loaded collection shows it after flush.
  auto bob = session.scalars(select<Student>().where(col(&Student::name) == "bob")).one();
  ASSERT_EQ(math->students.size(), 2u);
  bob->courses.add(math);
  session.flush();
  EXPECT_EQ(math->students.size(), 3u);
  // Pending on both sides, each listing the other.
  auto dan = session.add(Student{.name = "dan"});
  auto bio = std::make_shared<Course>(Course{.title = "bio"});
  dan->courses.add(bio);
  bio->students.add(dan);
  session.commit();
  EXPECT_EQ(enrollments(), "ann:art,ann:math,bob:art,bob:math,cid:math,dan:bio");
}

// rollback() and a savepoint's rollback discard association rows added since; the collections reload.
TEST_F(IntegrationOrmM2m, RollbackDiscardsAddedAssociation) {
  seed();
  Session session(engine());
  auto cid = session.scalars(select<Student>().where(col(&Student::name) == "cid")).one();
  auto math = session.scalars(select<Course>().where(col(&Course::title) == "math")).one();
  cid->courses.add(math);
  session.flush();
  session.rollback();
  EXPECT_TRUE(cid->courses.empty());
  EXPECT_EQ(enrollments(), "ann:art,ann:math,bob:art");
  {
    auto sp = session.begin_nested();
    cid->courses.add(math);
    session.flush();
    sp.rollback();
  }
  EXPECT_TRUE(cid->courses.empty());
  {
    auto sp = session.begin_nested();
    cid->courses.add(math);
    sp.commit();
  }
  session.commit();
  EXPECT_EQ(enrollments(), "ann:art,ann:math,bob:art,cid:math");
}

// A one-directional many-to-many (no collection on the other side) to a table with an INTEGER key.
TEST_F(IntegrationOrmM2m, OneDirectional) {
  Session session(engine());
  auto ann = session.add(Student{.name = "ann"});
  ann->tags.add(Tag{.id = 5, .label = "new"});
  session.commit();
  EXPECT_EQ(db("SELECT student_id = (SELECT id FROM students) AND tag_id = 5 FROM student_tags"), "t");
  Session other(engine());
  auto again = other.scalars(select<Student>().options(selectinload(&Student::tags))).one();
  ASSERT_EQ(again->tags.size(), 1u);
  EXPECT_EQ(again->tags[0]->label, "new");
  other.delete_(again);
  other.commit();
  EXPECT_EQ(db("SELECT count(*) FROM student_tags"), "0");
  EXPECT_EQ(db("SELECT count(*) FROM tags"), "1");
}

}  // namespace
}  // namespace pooler::test
