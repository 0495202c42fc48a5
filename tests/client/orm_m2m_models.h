// Mapped types for the many-to-many tests: students ↔ courses through the association table "enrollments",
// with back_populates on both sides; tags are one-directional (no collection on the tag side).
#pragma once

#include <cstdint>
#include <string>
#include <tuple>

#include "pooler/orm.hpp"

namespace pooler::test::m2m_models {

struct Course;
struct Tag;
struct Student {
  std::int64_t id{};
  std::string name{};
  pooler::orm::Many<Course> courses{};
  pooler::orm::Many<Tag> tags{};
};

struct Course {
  std::int64_t id{};
  std::string title{};
  pooler::orm::Many<Student> students{};
};

struct Tag {
  std::int32_t id{};
  std::string label{};
};

}  // namespace pooler::test::m2m_models

template <>
struct pooler::orm::mapping<pooler::test::m2m_models::Student> {
  using Student = pooler::test::m2m_models::Student;
  using Course = pooler::test::m2m_models::Course;
  using Tag = pooler::test::m2m_models::Tag;
  static constexpr std::string_view table = "students";
  static inline const auto columns = std::tuple{
      column(&Student::id, "id", BigInteger).primary_key(),
      column(&Student::name, "name", String(100)),
  };
  static inline const auto relationships = std::tuple{
      relationship(&Student::courses, secondary("enrollments", "student_id", "course_id"))
          .back_populates(&Course::students),
      relationship(&Student::tags, secondary("student_tags", "student_id", "tag_id")),
  };
};

template <>
struct pooler::orm::mapping<pooler::test::m2m_models::Course> {
  using Student = pooler::test::m2m_models::Student;
  using Course = pooler::test::m2m_models::Course;
  static constexpr std::string_view table = "courses";
  static inline const auto columns = std::tuple{
      column(&Course::id, "id", BigInteger).primary_key(),
      column(&Course::title, "title", String(100)),
  };
  static inline const auto relationships = std::tuple{
      relationship(&Course::students, secondary("enrollments", "course_id", "student_id"))
          .back_populates(&Student::courses),
  };
};

template <>
struct pooler::orm::mapping<pooler::test::m2m_models::Tag> {
  using Tag = pooler::test::m2m_models::Tag;
  static constexpr std::string_view table = "tags";
  static inline const auto columns = std::tuple{
      column(&Tag::id, "id", Integer).primary_key(),
      column(&Tag::label, "label", Text),
  };
};
