// Must NOT compile: a std::string member mapped as BigInteger. The orm_mapping_type_check test builds this file
// and expects the mapping's static_assert message.
#include <string>
#include <tuple>

#include "pooler/orm.hpp"

struct Bad {
  std::int64_t id{};
  std::string name;
};

template <>
struct pooler::orm::mapping<Bad> {
  static constexpr std::string_view table = "bad";
  static inline const auto columns = std::tuple{
      column(&Bad::id, "id", BigInteger).primary_key(),
      column(&Bad::name, "name", BigInteger),
  };
};

int main() { return static_cast<int>(pooler::orm::detail::entity_info<Bad>().columns.size()); }
