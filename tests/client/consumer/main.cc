// Prints "consumer ok <n>" after a parameterized query through the installed library.
#include <cstdio>

#include <pooler/client.hpp>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  auto engine = pooler::create_engine(argv[1], {.pool_size = 1, .max_overflow = 0});
  auto conn = engine.connect();
  auto n = conn.execute(pooler::text("SELECT :a::int * :b::int AS n"), {{"a", 6}, {"b", 7}}).scalar_one<int>();
  std::printf("consumer ok %d\n", n);
  return n == 42 ? 0 : 1;
}
