// The unit of work behind Session's ORM methods: which objects the session holds and in which state, the
// identity map (one object per primary key), flush (INSERT/UPDATE/DELETE in foreign-key order, UPDATE of
// changed columns only), and loading (rows into objects, lazy/selectin/joined relationships).
#include <algorithm>
#include <array>
#include <cstring>
#include <exception>
#include <optional>
#include <span>
#include <cxxabi.h>
#include <unordered_set>

#include <fmt/format.h>
#include <libpq-fe.h>

#include "client/src/orm/compile.h"
#include "pooler/orm/unit_of_work.hpp"

namespace pooler::orm::detail {

namespace {
constexpr std::size_t kNone = static_cast<std::size_t>(-1);
}

// Identity keys. A single-column key is its column's text, read in place; a composite key is each column's
// text, length-prefixed, built in `buf`. Every producer (rows, get()'s values, RETURNING) uses these two.
std::string_view join_key(std::span<const std::string_view> parts, std::string& buf) {
  if (parts.size() == 1) return parts.front();
  buf.clear();
  for (std::string_view p : parts) {
    const auto n = static_cast<std::uint32_t>(p.size());
    buf.append(reinterpret_cast<const char*>(&n), sizeof n);
    buf.append(p);
  }
  return buf;
}
// The key of the entity whose columns start at `offset` in `row`; nullopt when a key column is NULL.
std::optional<std::string_view> row_key(const PGresult* pg, int row, int offset, const EntityInfo& info,
                                        std::string& buf) {
  std::array<std::string_view, 8> small;
  std::vector<std::string_view> large;
  std::span<std::string_view> parts;
  if (info.pks.size() <= small.size()) {
    parts = std::span(small.data(), info.pks.size());
  } else {
    large.resize(info.pks.size());
    parts = large;
  }
  for (std::size_t i = 0; i < info.pks.size(); ++i) {
    const int column = offset + static_cast<int>(info.pks[i]);
    const int length = PQgetlength(pg, row, column);
    if (length == 0 && PQgetisnull(pg, row, column)) return std::nullopt;
    parts[i] = {PQgetvalue(pg, row, column), static_cast<std::size_t>(length)};
  }
  return join_key(parts, buf);
}

// A result the session keeps rows of (snapshots), shared by the entries loaded from it with a plain count: a
// session is used by one thread at a time, and an atomic shared_ptr copy per loaded row is measurable at 100k
// rows.
class SnapshotRef {
 public:
  SnapshotRef() = default;
  explicit SnapshotRef(std::shared_ptr<PGresult> pg) : held_(new Held{std::move(pg), 1}) {}
  SnapshotRef(const SnapshotRef& o) : held_(o.held_) {
    if (held_ != nullptr) ++held_->refs;
  }
  SnapshotRef(SnapshotRef&& o) noexcept : held_(std::exchange(o.held_, nullptr)) {}
  SnapshotRef& operator=(SnapshotRef o) noexcept {
    std::swap(held_, o.held_);
    return *this;
  }
  ~SnapshotRef() { reset(); }
  void reset() {
    if (held_ != nullptr && --held_->refs == 0) delete held_;
    held_ = nullptr;
  }
  [[nodiscard]] PGresult* get() const { return held_ != nullptr ? held_->pg.get() : nullptr; }
  explicit operator bool() const { return held_ != nullptr; }

 private:
  struct Held {
    std::shared_ptr<PGresult> pg;
    std::size_t refs;
  };
  Held* held_ = nullptr;
};

// One object the session holds. States: kPending (added, not yet INSERTed; enters at add()), kPersistent
// (has a row: loaded, or INSERTed by a flush), kMarkedDeleted (delete_() of a persistent object, DELETEd at the
// next flush), kDeleted (DELETEd, out of the identity map; dropped at commit, back to persistent at rollback).
// An entry leaves (becomes a tombstone: `dead`) at expunge, close, commit (kDeleted) and at rollback when its
// INSERT is undone (a rollback to a savepoint undoes the INSERTs made since the savepoint).
//
// Levels say where in the transaction an object was written: 0 not in this transaction, 1 in the transaction
// itself, n + 1 inside the n-th nested savepoint (begin_nested). Releasing savepoint n moves its writes to level
// n; rolling it back undoes the writes at levels above n.
struct UnitOfWork::Entry {
  enum class Status : std::uint8_t { kPending, kPersistent, kMarkedDeleted, kDeleted };
  std::shared_ptr<void> obj;
  const EntityInfo* info = nullptr;
  SnapshotRef snapshot;  // the row last read or written (columns at snapshot_offset…)
  int snapshot_row = 0;
  int snapshot_offset = 0;
  Status status = Status::kPending;
  bool expired = false;
  bool key_from_server = false;  // the primary key was assigned by the server's sequence
  bool dead = false;             // removed; skipped until State::compact() drops it
  std::uint16_t inserted_at = 0;  // level of its INSERT
  std::uint16_t written_at = 0;   // level of its last UPDATE/DELETE (flushed or bulk)
  // Many-to-many collections as the database has them: per relationship, the related objects' keys when the
  // session loaded the collection or flushed it (empty optional: not known, e.g. never loaded). Flush writes the
  // difference to the association table. Cleared whenever the collection goes back to "not loaded".
  std::vector<std::optional<std::vector<std::string>>> links;
  std::uint16_t links_written_at = 0;  // level of the last association row written for its collections

  // The identity key: the key columns of the snapshot (a persistent object always has one, and flush never
  // UPDATEs key columns), so a single-column key costs no copy per loaded row. `buf` holds a composite one.
  [[nodiscard]] bool keyed() const { return static_cast<bool>(snapshot); }
  [[nodiscard]] std::string_view key(std::string& buf) const {
    if (!snapshot) return {};
    return row_key(snapshot.get(), snapshot_row, snapshot_offset, *info, buf).value_or(std::string_view{});
  }
  void set_snapshot(const SnapshotRef& pg, int row, int offset) {
    snapshot = pg;
    snapshot_row = row;
    snapshot_offset = offset;
  }
};

// The session's entries in order, in fixed chunks that never move, so Entry* stay valid while it grows. A chunk
// holds many entries, where std::deque allocates one node per handful: loading 100k rows costs ~800 allocations
// fewer.
class EntryList {
 public:
  [[nodiscard]] std::size_t size() const { return size_; }
  UnitOfWork::Entry& operator[](std::size_t i) { return chunks_[i / kChunk][i % kChunk]; }
  UnitOfWork::Entry& back() { return (*this)[size_ - 1]; }
  UnitOfWork::Entry& emplace_back() {
    if (size_ == chunks_.size() * kChunk) chunks_.push_back(std::make_unique<UnitOfWork::Entry[]>(kChunk));
    return (*this)[size_++];
  }
  void clear() {
    chunks_.clear();
    size_ = 0;
  }
  void swap(EntryList& other) noexcept {
    chunks_.swap(other.chunks_);
    std::swap(size_, other.size_);
  }

  class iterator {
   public:
    iterator(EntryList* list, std::size_t i) : list_(list), i_(i) {}
    UnitOfWork::Entry& operator*() const { return (*list_)[i_]; }
    iterator& operator++() {
      ++i_;
      return *this;
    }
    bool operator==(const iterator& o) const { return i_ == o.i_; }

   private:
    EntryList* list_;
    std::size_t i_;
  };
  iterator begin() { return {this, 0}; }
  iterator end() { return {this, size_}; }

 private:
  static constexpr std::size_t kChunk = 128;
  std::vector<std::unique_ptr<UnitOfWork::Entry[]>> chunks_;
  std::size_t size_ = 0;
};

// Resolves relationships of objects this session loaded, on first access.
class RelationshipLoader final : public LazyLoader {
 public:
  RelationshipLoader(std::weak_ptr<UnitOfWork> uow, const EntityInfo* owner, std::size_t rel)
      : uow_(std::move(uow)), owner_(owner), rel_(rel) {}
  std::vector<std::shared_ptr<void>> load(const void* parent) override {
    auto uow = uow_.lock();
    if (!uow) throw_detached(owner_->relationships[rel_].many ? "collection" : "reference");
    return uow->load_relationship(*owner_, rel_, parent);
  }

 private:
  std::weak_ptr<UnitOfWork> uow_;
  const EntityInfo* owner_;
  std::size_t rel_;
};

// Primary key text → entry, by open addressing (linear probing over {hash, entry} slots): a lookup of a new key
// usually touches one slot, where std::unordered_map walks nodes scattered over the heap — the difference
// shows when a query loads 100k rows.
class KeyIndex {
 public:
  [[nodiscard]] UnitOfWork::Entry* find(std::string_view key) const;
  // One probe for "find, else add": `found` is the entry, or null and fill() adds one where the probe ended
  // (valid until the next insert or erase).
  struct Probe {
    std::size_t slot = 0;
    std::size_t hash = 0;
    UnitOfWork::Entry* found = nullptr;
  };
  Probe lookup(std::string_view key);
  void fill(const Probe& p, UnitOfWork::Entry* e);
  Probe lookup(std::string_view key, std::size_t hash);
  // Starts fetching the slot a lookup of this hash reads first (big loads stall on that cache miss otherwise).
  void prefetch(std::size_t hash) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[hash & (slots_.size() - 1)]);
  }
  // Keys are short (integer keys' text): 8 bytes at a time, multiply-xorshift mixed, beats std::hash's
  // byte-oriented Murmur on them.
  static std::size_t hash(std::string_view key) {
    std::uint64_t h = 0x9e3779b97f4a7c15ULL ^ key.size();
    const char* p = key.data();
    std::size_t n = key.size();
    auto mix = [&h](std::uint64_t w) {
      h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
      h ^= h >> 31;
    };
    for (; n >= 8; p += 8, n -= 8) {
      std::uint64_t w;
      std::memcpy(&w, p, 8);
      mix(w);
    }
    if (n > 0) {
      std::uint64_t w = 0;
      std::memcpy(&w, p, n);
      mix(w);
    }
    h *= 0x94d049bb133111ebULL;
    return static_cast<std::size_t>(h ^ (h >> 29));
  }
  // Maps key to e (replacing what it mapped to).
  void insert(std::string_view key, UnitOfWork::Entry* e);
  // Unmaps key if it maps to `only` (any entry when only is null).
  void erase(std::string_view key, const UnitOfWork::Entry* only = nullptr);
  void reserve(std::size_t n);
  void clear() {
    slots_.clear();
    used_ = 0;
    tombs_ = 0;
  }

 private:
  struct Slot {
    std::size_t hash = 0;
    UnitOfWork::Entry* entry = nullptr;  // null: empty; tombstone(): erased
  };
  static UnitOfWork::Entry* tombstone() { return reinterpret_cast<UnitOfWork::Entry*>(alignof(UnitOfWork::Entry)); }
  // The slot holding key, or the slot to put it in.
  std::size_t probe(std::string_view key, std::size_t hash) const;
  void grow(std::size_t capacity);

  std::vector<Slot> slots_;  // size is 0 or a power of two, kept at most half full (tombstones included)
  mutable std::string scratch_;  // an entry's composite key, built to compare
  std::size_t used_ = 0;
  std::size_t tombs_ = 0;
};

struct UnitOfWork::State {
  Hooks hooks;
  bool autoflush = true;
  bool flushing = false;
  std::uint16_t depth = 0;  // savepoints open through begin_nested
  [[nodiscard]] std::uint16_t level() const { return static_cast<std::uint16_t>(depth + 1); }
  // Every entry in the order the session met its object (INSERTs of one table go in this order). Entries stay
  // put while it grows, so Entry* below stay valid until compact().
  EntryList entries;
  std::size_t dead = 0;
  // Per entity: primary key text → the entry.
  std::unordered_map<const EntityInfo*, KeyIndex> identity;
  // Object address → entry, built lazily: loading many rows pays for the identity map only, and this index
  // catches up with entries[indexed…] at the first lookup by object.
  std::unordered_map<const void*, Entry*> by_object;
  std::size_t indexed = 0;
  std::unordered_map<const EntityInfo*, std::vector<std::shared_ptr<LazyLoader>>> loaders;

  Entry* find(const void* obj) {
    for (; indexed < entries.size(); ++indexed) {
      Entry& e = entries[indexed];
      if (!e.dead) by_object[e.obj.get()] = &e;
    }
    auto it = by_object.find(obj);
    return it == by_object.end() ? nullptr : it->second;
  }
  Entry& append(Entry e) {
    Entry& added = entries.emplace_back();
    added = std::move(e);
    return added;
  }
  void remove(Entry& e) {
    if (e.keyed()) {
      std::string buf;
      identity[e.info].erase(e.key(buf), &e);
    }
    auto it = by_object.find(e.obj.get());
    if (it != by_object.end() && it->second == &e) by_object.erase(it);
    e.dead = true;
    e.obj.reset();
    e.snapshot.reset();
    ++dead;
  }
  // Live entries, in order (a snapshot: entries appended meanwhile are not in it).
  std::vector<Entry*> live() {
    std::vector<Entry*> v;
    v.reserve(entries.size() - dead);
    for (auto& e : entries) {
      if (!e.dead) v.push_back(&e);
    }
    return v;
  }
  // Drops tombstones (invalidates every Entry*; call only between operations).
  void compact() {
    if (dead == 0) return;
    EntryList kept;
    for (auto& e : entries) {
      if (!e.dead) kept.emplace_back() = std::move(e);
    }
    entries.swap(kept);
    dead = 0;
    by_object.clear();
    indexed = 0;
    for (auto& [info, ids] : identity) ids.clear();
    std::string buf;
    for (auto& e : entries) {
      if (e.keyed() && e.status != Entry::Status::kDeleted) identity[e.info].insert(e.key(buf), &e);
    }
  }
  void clear() {
    entries.clear();
    dead = 0;
    identity.clear();
    by_object.clear();
    indexed = 0;
  }
};

namespace {

std::string demangle(const std::string& name) {
  int status = 0;
  char* s = abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &status);
  std::string out = status == 0 && s != nullptr ? s : name;
  std::free(s);  // NOLINT: allocated by __cxa_demangle
  return out;
}

std::string repr(const EntityInfo& info, const void* obj) {
  std::string s = fmt::format("{} object (table {}:", demangle(info.type->name()), info.table);
  for (std::size_t i = 0; i < info.columns.size(); ++i) {
    s += fmt::format("{} {}={}", i == 0 ? "" : ",", info.columns[i].name, info.encode(obj, i).repr());
  }
  return s + ")";
}

}  // namespace

UnitOfWork::UnitOfWork(Hooks hooks, bool autoflush) : state_(std::make_unique<State>()) {
  state_->hooks = std::move(hooks);
  state_->autoflush = autoflush;
}
UnitOfWork::~UnitOfWork() { release_links(); }

// --- object bookkeeping ----------------------------------------------------------------------------------

namespace {

const std::vector<std::shared_ptr<LazyLoader>>& loaders_for(
    std::unordered_map<const EntityInfo*, std::vector<std::shared_ptr<LazyLoader>>>& cache,
    const std::weak_ptr<UnitOfWork>& uow, const EntityInfo& info) {
  auto& v = cache[&info];
  if (v.size() != info.relationships.size()) {
    v.clear();
    for (std::size_t i = 0; i < info.relationships.size(); ++i) {
      v.push_back(std::make_shared<RelationshipLoader>(uow, &info, i));
    }
  }
  return v;
}

}  // namespace

void UnitOfWork::add(const EntityInfo& info, std::shared_ptr<void> obj) {
  if (!obj) throw client::ArgumentError("add(): null object");
  if (Entry* held = state_->find(obj.get())) {
    if (held->status == Entry::Status::kMarkedDeleted) held->status = Entry::Status::kPersistent;
    return;  // already held: add() is idempotent, as in SQLAlchemy
  }
  const void* address = obj.get();
  Entry e;
  e.info = &info;
  e.obj = std::move(obj);
  Entry* added = &state_->append(std::move(e));
  state_->by_object[address] = added;  // find() above caught the index up, so it stays complete
  state_->indexed = state_->entries.size();
}

void UnitOfWork::delete_(const EntityInfo&, const void* obj) {
  Entry* e = state_->find(obj);
  if (e == nullptr) {
    throw UnmappedInstanceError("delete_(): the object is not in this session (load it or add it first)");
  }
  if (e->status == Entry::Status::kPending) {
    state_->remove(*e);  // never written: just forget it
    return;
  }
  if (e->status == Entry::Status::kPersistent) e->status = Entry::Status::kMarkedDeleted;
}

bool UnitOfWork::contains(const void* obj) const {
  const Entry* e = state_->find(obj);
  return e != nullptr && e->status != Entry::Status::kDeleted;
}

std::size_t UnitOfWork::size() const { return state_->entries.size() - state_->dead; }

namespace {
// Whether a column of a persistent object differs from its snapshot.
bool differs_from_snapshot(const UnitOfWork::Entry& e) {
  for (std::size_t i = 0; i < e.info->columns.size(); ++i) {
    if (e.info->differs(e.obj.get(), i,
                        raw_field(e.snapshot.get(), e.snapshot_row, e.snapshot_offset + static_cast<int>(i)))) {
      return true;
    }
  }
  return false;
}
}  // namespace

bool UnitOfWork::is_modified(const void* obj) const {
  const Entry* found = state_->find(obj);
  if (found == nullptr) return false;
  const Entry& e = *found;
  if (e.status != Entry::Status::kPersistent) return e.status != Entry::Status::kDeleted;
  return differs_from_snapshot(e);
}

namespace {
// Back to "not loaded" (loaded again on next access), as expiring does in SQLAlchemy.
void reset_relationships(const std::vector<std::shared_ptr<LazyLoader>>& loaders, UnitOfWork::Entry& e) {
  for (std::size_t i = 0; i < e.info->relationships.size(); ++i) {
    e.info->relationships[i].set_lazy(e.obj.get(), loaders[i]);
  }
  e.links.clear();
}
// Only the many-to-many collections (their association rows were rolled back; the rest of the object was not).
void reset_links(const std::vector<std::shared_ptr<LazyLoader>>& loaders, UnitOfWork::Entry& e) {
  for (std::size_t i = 0; i < e.info->relationships.size(); ++i) {
    if (e.info->relationships[i].secondary != nullptr) e.info->relationships[i].set_lazy(e.obj.get(), loaders[i]);
  }
  e.links.clear();
}
}  // namespace

void UnitOfWork::expire(const void* obj) {
  Entry* e = state_->find(obj);
  if (e == nullptr) throw UnmappedInstanceError("expire(): the object is not in this session");
  if (e->status == Entry::Status::kPending) return;
  e->expired = true;
  reset_relationships(loaders_for(state_->loaders, weak_from_this(), *e->info), *e);
}

void UnitOfWork::expire_all() {
  for (auto& e : state_->entries) {
    if (e.dead || e.status == Entry::Status::kPending) continue;
    e.expired = true;
    reset_relationships(loaders_for(state_->loaders, weak_from_this(), *e.info), e);
  }
}

void UnitOfWork::expunge(const void* obj) {
  if (Entry* e = state_->find(obj)) state_->remove(*e);
}

void UnitOfWork::expunge_all() {
  release_links();
  state_->clear();
}

void UnitOfWork::release_links() {
  // C++ has no cycle collector: two loaded sides of a back_populates pair own each other, and would outlive
  // every other holder. Unloading them when the session lets its objects go breaks that; reading them later
  // raises DetachedInstanceError, as for any unloaded relationship of a detached object.
  auto self = weak_from_this();
  for (auto& e : state_->entries) {
    if (e.dead) continue;
    const auto& rels = e.info->relationships;
    for (std::size_t i = 0; i < rels.size(); ++i) {
      if (rels[i].secondary == nullptr || rels[i].back() == kNone || !rels[i].loaded(e.obj.get())) continue;
      rels[i].set_lazy(e.obj.get(), loaders_for(state_->loaders, self, *e.info)[i]);
    }
  }
}

// --- loading ---------------------------------------------------------------------------------------------

namespace {

// Identity-map-aware load of one entity from its columns in each row of a result. Returns the session's object
// for that primary key (refreshed from the row when it was expired), or null when the key is NULL (outer join).
// New objects go into one block per loader (EntityInfo::make_block) rather than one allocation each.
class RowLoader {
 public:
  RowLoader(UnitOfWork::State& state, KeyIndex& identity, const std::vector<std::shared_ptr<LazyLoader>>& loaders,
            const EntityInfo& info, const std::shared_ptr<PGresult>& pg, int offset)
      : state_(state),
        identity_(identity),
        loaders_(loaders),
        info_(info),
        pg_(pg.get()),
        snapshot_(pg),
        columns_(result_columns(pg.get(), offset, info.columns.size())),
        offset_(offset),
        rows_(PQntuples(pg.get())) {}

  // Rows are usually asked for in order: each call also reads the key of the row kAhead further on and starts
  // fetching its identity-map slot, so that by its turn the cache miss is paid.
  std::shared_ptr<void> operator()(int row);

 private:
  struct Key {
    int row = -1;
    bool null = true;
    std::string_view text;  // in the result, or in buf (composite keys)
    std::size_t hash = 0;
    std::string buf;
  };
  static constexpr int kAhead = 8;
  static constexpr int kRing = 2 * kAhead;
  const Key& read_key(int row) {
    Key& k = ring_[row % kRing];
    k.row = row;
    std::optional<std::string_view> text = row_key(pg_, row, offset_, info_, k.buf);
    k.null = !text;
    if (text) {
      k.text = *text;
      k.hash = KeyIndex::hash(k.text);
      identity_.prefetch(k.hash);
    }
    return k;
  }

  UnitOfWork::State& state_;
  KeyIndex& identity_;
  const std::vector<std::shared_ptr<LazyLoader>>& loaders_;
  const EntityInfo& info_;
  const PGresult* pg_;
  SnapshotRef snapshot_;  // what each entry loaded from this result keeps
  ResultColumns columns_;
  int offset_;
  int rows_;
  std::shared_ptr<void> block_;  // where new objects go; a fresh one for the rows left when it is full
  std::array<Key, kRing> ring_{};
};

std::shared_ptr<void> RowLoader::operator()(int row) {
  // A reference: reading row + kAhead fills another slot of the ring.
  const Key& pk = ring_[row % kRing].row == row ? ring_[row % kRing] : read_key(row);
  if (row + kAhead < rows_) read_key(row + kAhead);
  if (pk.null) return nullptr;
  KeyIndex::Probe probe = identity_.lookup(pk.text, pk.hash);
  if (UnitOfWork::Entry* hit = probe.found) {
    auto& e = *hit;
    if (e.expired) {
      info_.load(e.obj.get(), columns_, row);
      e.set_snapshot(snapshot_, row, columns_.offset);
      e.expired = false;
    }
    return e.obj;
  }
  void* raw = block_ ? info_.block_emplace(block_.get()) : nullptr;
  if (raw == nullptr) {
    block_ = info_.make_block(static_cast<std::size_t>(std::max(1, rows_ - row)));
    raw = info_.block_emplace(block_.get());
  }
  std::shared_ptr<void> obj(block_, raw);
  info_.load(raw, columns_, row);
  for (std::size_t i = 0; i < info_.relationships.size(); ++i) info_.relationships[i].set_lazy(raw, loaders_[i]);
  UnitOfWork::Entry& e = state_.entries.emplace_back();
  e.obj = obj;
  e.info = &info_;
  e.status = UnitOfWork::Entry::Status::kPersistent;
  e.set_snapshot(snapshot_, row, columns_.offset);
  identity_.fill(probe, &e);
  return obj;
}

// Sets the back_populates side of each loaded child to point at its parent (weakly for many-to-one).
void back_populate(const RelationshipInfo& rel, const std::shared_ptr<void>& parent,
                   const std::vector<std::shared_ptr<void>>& children) {
  std::size_t back = rel.back();
  if (back == kNone) return;
  const auto& other = rel.target().relationships[back];
  for (const auto& c : children) {
    if (other.many) continue;  // the other side of a many-to-one is a collection: not filled piecemeal
    other.set_items(c.get(), {parent}, false);
  }
}

// The primary key values of an object, in key column order.
std::vector<client::Value> key_values(const EntityInfo& info, const void* obj) {
  std::vector<client::Value> out;
  out.reserve(info.pks.size());
  for (std::size_t c : info.pks) out.push_back(info.encode(obj, c));
  return out;
}

// key column = value for each key column (AND).
NodePtr key_condition(const EntityInfo& info, const std::vector<client::Value>& values) {
  std::vector<NodePtr> terms;
  for (std::size_t i = 0; i < info.pks.size(); ++i) {
    terms.push_back(binary_node("=", column_node(info, info.pks[i]), param_node(values[i])));
  }
  return terms.size() == 1 ? terms.front() : list_node(Node::Kind::kAnd, std::move(terms), {});
}

// The identity key for key values (their text, as the server prints them).
std::string_view values_key(const std::vector<client::Value>& values, std::string& buf) {
  std::vector<std::string_view> parts;
  for (const auto& v : values) parts.emplace_back(*v.data());
  if (parts.size() == 1) {
    buf.assign(parts.front());
    return buf;
  }
  std::string joined;
  join_key(parts, joined);
  buf = std::move(joined);
  return buf;
}

client::Value array_of(const std::vector<client::Value>& values) {
  std::vector<std::optional<std::string>> elements;
  std::uint32_t type = client::oid::kText;
  for (const auto& v : values) {
    if (v.type_oid() != client::oid::kUnknown) type = v.type_oid();
    elements.push_back(v.data());
  }
  std::uint32_t array_type = client::array_oid(type);
  if (array_type == 0) array_type = client::array_oid(client::oid::kText);
  return client::Value::text(client::detail::encode_array(elements), array_type);
}

// An object's single-column primary key as text (as the server prints it, and as the identity map keys it).
std::string key_text(const EntityInfo& info, const void* obj) {
  client::Value v = info.encode(obj, single_pk(info));
  return v.is_null() ? std::string() : *v.data();
}

// The session just filled many-to-many collection `rel` of the object of `e` from the database: that is now
// what flush compares the collection with.
void record_links(UnitOfWork::Entry* e, std::size_t rel, const std::vector<std::shared_ptr<void>>& items) {
  if (e == nullptr) return;
  const EntityInfo& target = e->info->relationships[rel].target();
  std::vector<std::string> keys;
  keys.reserve(items.size());
  for (const auto& i : items) keys.push_back(key_text(target, i.get()));
  e->links.resize(e->info->relationships.size());
  e->links[rel] = std::move(keys);
}

}  // namespace

SelectCore secondary_select(const EntityInfo& owner, std::size_t index, const std::vector<client::Value>& owner_keys) {
  const auto& rel = owner.relationships.at(index);
  const EntityInfo& sec = rel.secondary();
  const EntityInfo& target = rel.target();
  SelectCore q;
  q.items.push_back({&target, nullptr});
  q.items.push_back({nullptr, column_node(sec, 0)});  // which parent each row is for
  q.joins.push_back({&sec, binary_node("=", column_node(sec, 1), column_node(target, single_pk(target))), false});
  q.where.push_back(binary_node("=", column_node(sec, 0),
                                list_node(Node::Kind::kFunction, {param_node(array_of(owner_keys))}, "ANY")));
  q.order_by.push_back({column_node(target, single_pk(target)), false, true});
  return q;
}

std::vector<std::shared_ptr<void>> UnitOfWork::load_relationship(const EntityInfo& owner, std::size_t index,
                                                                 const void* parent) {
  Entry* held = state_->find(parent);
  if (held == nullptr || held->status == Entry::Status::kPending) {
    throw_detached(owner.relationships[index].many ? "collection" : "reference");
  }
  std::shared_ptr<void> parent_obj = held->obj;
  autoflush();
  const auto& rel = owner.relationships[index];
  const EntityInfo& target = rel.target();
  SelectCore s;
  s.items.push_back({&target, nullptr});
  if (rel.secondary != nullptr) {
    const EntityInfo& sec = rel.secondary();
    client::Value key = owner.encode(parent, single_pk(owner));
    s.joins.push_back({&sec, binary_node("=", column_node(sec, 1), column_node(target, single_pk(target))), false});
    s.where.push_back(binary_node("=", column_node(sec, 0), param_node(std::move(key))));
    s.order_by.push_back({column_node(target, single_pk(target)), false, true});
    Loaded loaded = select(s);
    record_links(state_->find(parent), index, loaded.objects);
    return std::move(loaded.objects);
  }
  if (rel.many) {
    client::Value key = owner.encode(parent, single_pk(owner));
    s.where.push_back(binary_node("=", column_node(target, rel.fk_column()), param_node(std::move(key))));
    s.order_by.push_back({column_node(target, target.pk), false, true});
  } else {
    client::Value fk = owner.encode(parent, rel.fk_column());
    if (fk.is_null()) return {};
    // A many-to-one whose target is in the identity map needs no query.
    auto& ids = state_->identity[&target];
    Entry* hit = ids.find(*fk.data());
    if (hit != nullptr && !hit->expired) return {hit->obj};
    s.where.push_back(binary_node("=", column_node(target, single_pk(target)), param_node(std::move(fk))));
  }
  Loaded loaded = select(s);
  std::vector<std::shared_ptr<void>> out = std::move(loaded.objects);
  if (rel.many) back_populate(rel, parent_obj, out);
  return out;
}

UnitOfWork::Loaded UnitOfWork::select(const SelectCore& s) {
  autoflush();
  return run_select(s);
}

UnitOfWork::Loaded UnitOfWork::run_select(const SelectCore& s) {
  Loaded out;
  Compiled c = compile_select(s, &out.layout);
  out.result = state_->hooks.execute(c);
  out.items = s.items.size();
  std::shared_ptr<PGresult> pg = out.result.driver_result();
  const int rows = static_cast<int>(out.result.size());
  out.objects.resize(static_cast<std::size_t>(rows) * out.items);
  auto self = weak_from_this();
  for (std::size_t i = 0; i < out.items; ++i) {
    const EntityInfo* info = s.items[i].entity;
    if (info == nullptr) continue;
    // Growing the map once rather than rehashing along the way halves the cost of big loads; a low load
    // factor keeps most lookups of new keys to one empty bucket.
    state_->identity[info].reserve(static_cast<std::size_t>(rows));
    RowLoader load(*state_, state_->identity[info], loaders_for(state_->loaders, self, *info), *info, pg,
                   out.layout.item_offsets[i]);
    for (int r = 0; r < rows; ++r) out.objects[static_cast<std::size_t>(r) * out.items + i] = load(r);
  }
  // joinedload: children from the joined columns, grouped per parent in row order.
  for (std::size_t o = 0; o < s.options.size(); ++o) {
    if (out.layout.joined_offsets[o] < 0) continue;
    const auto& opt = s.options[o];
    const auto& rel = opt.owner->relationships[opt.relationship];
    const EntityInfo& target = rel.target();
    RowLoader load(*state_, state_->identity[&target], loaders_for(state_->loaders, self, target), target, pg,
                   out.layout.joined_offsets[o]);
    std::size_t item = static_cast<std::size_t>(out.layout.joined_items[o]);
    std::vector<std::shared_ptr<void>> parents;
    std::unordered_map<const void*, std::vector<std::shared_ptr<void>>> children;
    for (int r = 0; r < rows; ++r) {
      const auto& parent = out.objects[static_cast<std::size_t>(r) * out.items + item];
      if (!parent) continue;
      auto [slot, fresh] = children.try_emplace(parent.get());
      if (fresh) parents.push_back(parent);
      auto child = load(r);
      if (child && std::find(slot->second.begin(), slot->second.end(), child) == slot->second.end()) {
        slot->second.push_back(std::move(child));
      }
    }
    for (const auto& p : parents) {
      auto& kids = children[p.get()];
      rel.set_items(p.get(), kids, rel.many);
      if (rel.secondary != nullptr) record_links(state_->find(p.get()), opt.relationship, kids);
      if (rel.many) back_populate(rel, p, kids);
    }
    if (rel.many) out.dedupe = true;
  }
  if (out.dedupe) {
    // A joined collection repeats each result row once per child: keep the first of each.
    std::unordered_set<std::string> seen;
    for (int r = 0; r < rows; ++r) {
      std::string key;
      for (std::size_t i = 0; i < out.items; ++i) {
        const void* p = out.objects[static_cast<std::size_t>(r) * out.items + i].get();
        key.append(reinterpret_cast<const char*>(&p), sizeof p);
      }
      if (seen.insert(std::move(key)).second) out.unique_rows.push_back(static_cast<std::size_t>(r));
    }
  }
  // selectinload: one more query per relationship, for every parent this query returned.
  for (const auto& opt : s.options) {
    if (opt.kind != LoaderOption::Kind::kSelectIn) continue;
    std::size_t item = kNone;
    for (std::size_t i = 0; i < out.items; ++i) {
      if (s.items[i].entity == opt.owner) item = i;
    }
    if (item == kNone) continue;
    const auto& rel = opt.owner->relationships[opt.relationship];
    const EntityInfo& target = rel.target();
    std::vector<std::shared_ptr<void>> parents;
    std::unordered_set<const void*> seen;
    for (int r = 0; r < rows; ++r) {
      const auto& p = out.objects[static_cast<std::size_t>(r) * out.items + item];
      if (p && seen.insert(p.get()).second) parents.push_back(p);
    }
    if (parents.empty()) continue;
    auto& ids = state_->identity[&target];
    // Collections (through an association table or a foreign key) find their parents by primary key.
    std::vector<client::Value> keys;
    std::unordered_map<std::string, std::shared_ptr<void>> by_key;
    if (rel.secondary != nullptr || rel.many) {
      for (const auto& p : parents) {
        client::Value k = opt.owner->encode(p.get(), single_pk(*opt.owner));
        by_key.emplace(*k.data(), p);
        keys.push_back(std::move(k));
      }
    }
    if (rel.secondary != nullptr) {
      Loaded kids = select(secondary_select(*opt.owner, opt.relationship, keys));
      const int parent_column = kids.layout.item_offsets[1];
      auto kpg = kids.result.driver_result();
      std::unordered_map<const void*, std::vector<std::shared_ptr<void>>> grouped;
      for (std::size_t r = 0; r < kids.result.size(); ++r) {
        const int row = static_cast<int>(r);
        std::string_view owner_key(PQgetvalue(kpg.get(), row, parent_column),
                                   static_cast<std::size_t>(PQgetlength(kpg.get(), row, parent_column)));
        auto parent = by_key.find(std::string(owner_key));
        if (parent != by_key.end()) grouped[parent->second.get()].push_back(kids.objects[r * kids.items]);
      }
      for (const auto& p : parents) {
        auto& v = grouped[p.get()];
        rel.set_items(p.get(), v, true);
        record_links(state_->find(p.get()), opt.relationship, v);
      }
    } else if (rel.many) {
      SelectCore q;
      q.items.push_back({&target, nullptr});
      std::size_t fk = rel.fk_column();
      q.where.push_back(binary_node("=", column_node(target, fk),
                                    list_node(Node::Kind::kFunction, {param_node(array_of(keys))}, "ANY")));
      q.order_by.push_back({column_node(target, target.pk), false, true});
      Loaded kids = select(q);
      std::unordered_map<const void*, std::vector<std::shared_ptr<void>>> grouped;
      for (std::size_t r = 0; r < kids.result.size(); ++r) {
        auto& child = kids.objects[r];
        client::Value fkv = target.encode(child.get(), fk);
        if (fkv.is_null()) continue;
        auto parent = by_key.find(*fkv.data());
        if (parent != by_key.end()) grouped[parent->second.get()].push_back(child);
      }
      for (const auto& p : parents) {
        auto& v = grouped[p.get()];
        rel.set_items(p.get(), v, true);
        back_populate(rel, p, v);
      }
    } else {
      std::size_t fk = rel.fk_column();
      std::vector<client::Value> missing;
      std::unordered_set<std::string> asked;
      for (const auto& p : parents) {
        client::Value v = opt.owner->encode(p.get(), fk);
        if (v.is_null()) continue;
        Entry* hit = ids.find(*v.data());
        if (hit != nullptr && !hit->expired) continue;
        if (asked.insert(*v.data()).second) missing.push_back(std::move(v));
      }
      if (!missing.empty()) {
        SelectCore q;
        q.items.push_back({&target, nullptr});
        q.where.push_back(binary_node("=", column_node(target, single_pk(target)),
                                      list_node(Node::Kind::kFunction, {param_node(array_of(missing))}, "ANY")));
        (void)select(q);
      }
      for (const auto& p : parents) {
        client::Value v = opt.owner->encode(p.get(), fk);
        std::vector<std::shared_ptr<void>> one;
        if (!v.is_null()) {
          Entry* hit = ids.find(*v.data());
          if (hit != nullptr) one.push_back(hit->obj);
        }
        rel.set_items(p.get(), std::move(one), false);
      }
    }
  }
  return out;
}

std::shared_ptr<void> UnitOfWork::get(const EntityInfo& info, const std::vector<client::Value>& pk) {
  if (pk.size() != info.pks.size()) {
    throw client::ArgumentError(fmt::format("get(): the primary key of {} has {} column(s), {} value(s) given{}",
                                            info.table, info.pks.size(), pk.size(),
                                            info.composite_key() ? " (pass a std::tuple)" : ""));
  }
  for (const auto& v : pk) {
    if (v.is_null()) return nullptr;
  }
  auto& ids = state_->identity[&info];
  std::string buf;
  if (Entry* hit = ids.find(values_key(pk, buf))) {
    auto& e = *hit;
    if (e.status == Entry::Status::kMarkedDeleted) return nullptr;
    if (!e.expired) return e.obj;
  }
  SelectCore s;
  s.items.push_back({&info, nullptr});
  s.where.push_back(key_condition(info, pk));
  Loaded l = select(s);
  return l.objects.empty() ? nullptr : l.objects.front();
}

void UnitOfWork::refresh(const void* obj) {
  Entry* held = state_->find(obj);
  if (held == nullptr || held->status == Entry::Status::kPending) {
    throw UnmappedInstanceError("refresh(): the object is not persistent in this session");
  }
  const EntityInfo& info = *held->info;
  std::shared_ptr<void> keep = held->obj;
  SelectCore s;
  s.items.push_back({&info, nullptr});
  s.where.push_back(key_condition(info, key_values(info, obj)));
  autoflush();
  Compiled c = compile_select(s);
  client::Result r = state_->hooks.execute(c);
  if (r.empty()) throw ObjectDeletedError(fmt::format("refresh(): the row of {} is gone", repr(info, obj)));
  auto pg = r.driver_result();
  Entry& e = *state_->find(obj);
  info.load(e.obj.get(), result_columns(pg.get(), 0, info.columns.size()), 0);
  e.set_snapshot(SnapshotRef(pg), 0, 0);
  e.expired = false;
  reset_relationships(loaders_for(state_->loaders, weak_from_this(), info), e);
}

std::shared_ptr<void> UnitOfWork::merge(const EntityInfo& info, const void* obj) {
  std::shared_ptr<void> target;
  bool unset = false;
  for (std::size_t c : info.pks) unset = unset || info.is_unset(obj, c);
  if (!unset) target = get(info, key_values(info, obj));
  if (!target) {
    target = info.create();
    add(info, target);
  }
  for (std::size_t i = 0; i < info.columns.size(); ++i) info.copy_column(target.get(), obj, i);
  return target;
}

client::Result UnitOfWork::execute_dml(const DmlCore& s) {
  autoflush();
  Compiled c = compile_dml(s, /*returning_pk=*/true);
  client::Result r = state_->hooks.execute(c);
  // Keep the identity map in step (SQLAlchemy's synchronize_session="fetch"): deleted rows leave it, updated
  // ones are expired so their next load reads the new values.
  auto& ids = state_->identity[s.entity];
  auto pg = r.driver_result();
  std::string buf;
  for (int row = 0; row < static_cast<int>(r.size()); ++row) {
    std::optional<std::string_view> key = row_key(pg.get(), row, 0, *s.entity, buf);  // RETURNING the key
    Entry* hit = key ? ids.find(*key) : nullptr;
    if (hit == nullptr) continue;
    Entry& e = *hit;
    e.written_at = state_->level();
    if (s.is_delete) {
      e.status = Entry::Status::kDeleted;
      ids.erase(e.key(buf), &e);
    } else {
      e.expired = true;
    }
  }
  return r;
}

// --- flush -----------------------------------------------------------------------------------------------

void UnitOfWork::autoflush() {
  if (state_->autoflush && !state_->flushing) flush();
}

void UnitOfWork::flush() {
  if (state_->flushing) return;
  state_->flushing = true;
  struct Reset {
    bool& f;
    ~Reset() { f = false; }
  } reset{state_->flushing};
  // Cascade save-update: objects reachable through loaded relationships join the session as pending, in the
  // order they are found (holders in add order, collections in their order), so INSERT order is predictable.
  for (std::size_t i = 0; i < state_->entries.size(); ++i) {  // grows as objects are found
    Entry& e = state_->entries[i];
    if (e.dead || e.status == Entry::Status::kDeleted || e.status == Entry::Status::kMarkedDeleted) continue;
    for (const auto& rel : e.info->relationships) {
      if (!rel.loaded(e.obj.get())) continue;
      for (auto& item : rel.items(e.obj.get())) {
        if (state_->find(item.get()) == nullptr) add(rel.target(), std::move(item));
      }
    }
  }

  std::vector<Entry*> work;
  std::vector<const EntityInfo*> types;
  for (Entry* e : state_->live()) {
    if (e->status == Entry::Status::kDeleted) continue;
    work.push_back(e);
    if (std::find(types.begin(), types.end(), e->info) == types.end()) types.push_back(e->info);
  }
  types = dependency_order(std::move(types));

  Entry* current = nullptr;
  try {
    for (const EntityInfo* t : types) {
      // Foreign keys of t's objects from their many-to-one targets and from parents' collections holding them.
      for (Entry* e : work) {
        if (e->status == Entry::Status::kMarkedDeleted) continue;
        for (const auto& rel : e->info->relationships) {
          if (!rel.loaded(e->obj.get())) continue;
          if (!rel.many && e->info == t) {
            auto items = rel.items(e->obj.get());
            if (items.empty()) continue;
            const EntityInfo& target = rel.target();
            t->assign(e->obj.get(), rel.fk_column(), target.encode(items.front().get(), single_pk(target)));
          } else if (rel.many && rel.secondary == nullptr && &rel.target() == t) {
            client::Value key = e->info->encode(e->obj.get(), single_pk(*e->info));
            for (const auto& child : rel.items(e->obj.get())) t->assign(child.get(), rel.fk_column(), key);
          }
        }
      }
      for (Entry* e : work) {
        if (e->info != t) continue;
        current = e;
        void* obj = e->obj.get();
        const auto& cols = t->columns;
        if (e->status == Entry::Status::kPending) {
          SqlWriter w;
          std::string names;
          std::string values;
          bool server_key = false;
          for (std::size_t i = 0; i < cols.size(); ++i) {
            bool unset = t->is_unset(obj, i);
            if (unset && cols[i].autoincrement) {
              server_key = true;
              continue;
            }
            if (unset && cols[i].optional_member && !cols[i].server_default.empty()) continue;
            if (unset && cols[i].optional_member) t->apply_default(obj, i);
            if (!names.empty()) {
              names += ", ";
              values += ", ";
            }
            names += quote(cols[i].name);
            values += w.bind(t->encode(obj, i));
          }
          w.sql = "INSERT INTO " + quote(t->table) +
                  (names.empty() ? std::string(" DEFAULT VALUES") : " (" + names + ") VALUES (" + values + ")") +
                  " RETURNING ";
          w.entity_columns(*t, t->table);
          client::Result r = state_->hooks.execute(Compiled{std::move(w.sql), std::move(w.params)});
          auto pg = r.driver_result();
          t->load(obj, result_columns(pg.get(), 0, t->columns.size()), 0);
          e->set_snapshot(SnapshotRef(pg), 0, 0);
          e->status = Entry::Status::kPersistent;
          e->inserted_at = state_->level();
          e->key_from_server = server_key;
          std::string buf;
          state_->identity[t].insert(e->key(buf), e);
        } else if (e->status == Entry::Status::kPersistent) {
          SqlWriter w;
          std::string sets;
          for (std::size_t i = 0; i < cols.size(); ++i) {
            if (cols[i].primary_key) continue;
            RawField was = raw_field(e->snapshot.get(), e->snapshot_row, e->snapshot_offset + static_cast<int>(i));
            if (!t->differs(obj, i, was)) continue;
            if (!sets.empty()) sets += ", ";
            sets += quote(cols[i].name) + " = " + w.bind(t->encode(obj, i));
          }
          if (sets.empty()) continue;
          w.sql = "UPDATE " + quote(t->table) + " SET " + sets + " WHERE ";
          w.conjunction({key_condition(*t, key_values(*t, obj))});
          w.sql += " RETURNING ";
          w.entity_columns(*t, t->table);
          client::Result r = state_->hooks.execute(Compiled{std::move(w.sql), std::move(w.params)});
          if (r.empty()) {
            throw StaleDataError(fmt::format("UPDATE statement on table {} expected to update 1 row(s); 0 were "
                                             "matched",
                                             t->table));
          }
          auto pg = r.driver_result();
          t->load(obj, result_columns(pg.get(), 0, t->columns.size()), 0);
          e->set_snapshot(SnapshotRef(pg), 0, 0);
          e->expired = false;
          e->written_at = state_->level();
        }
      }
    }
    // Association rows: both sides now have their keys; links of objects about to be deleted go first.
    current = nullptr;
    flush_links(work);
    // DELETEs: referencing tables before referenced ones.
    for (auto t = types.rbegin(); t != types.rend(); ++t) {
      for (Entry* e : work) {
        if (e->info != *t || e->status != Entry::Status::kMarkedDeleted) continue;
        current = e;
        SqlWriter w;
        w.sql = "DELETE FROM " + quote((*t)->table) + " WHERE ";
        w.conjunction({key_condition(**t, key_values(**t, e->obj.get()))});
        client::Result r = state_->hooks.execute(Compiled{std::move(w.sql), std::move(w.params)});
        if (r.rowcount() != 1) {
          throw StaleDataError(fmt::format("DELETE statement on table {} expected to delete 1 row(s); {} were "
                                           "matched",
                                           (*t)->table, r.rowcount()));
        }
        e->status = Entry::Status::kDeleted;
        e->written_at = state_->level();
        std::string buf;
        state_->identity[*t].erase(e->key(buf), e);
      }
    }
  } catch (const client::DBError& err) {
    // The transaction is lost: roll it back, put the session's objects back as they were before it, and
    // say which object failed.
    client::ErrorInfo info = err.info();
    if (current != nullptr) {  // copied now: the rollback below may drop the entry
      info.instance = current->obj;
      info.instance_type = current->info->type;
      info.instance_repr = repr(*current->info, current->obj.get());
    }
    undo_failed_flush();
    client::throw_db_error(std::move(info));
  } catch (...) {
    undo_failed_flush();
    throw;
  }
}

void UnitOfWork::flush_links(const std::vector<Entry*>& work) {
  // One change per association row, whichever side's collection (or both) says so; a link both added (on one
  // side) and removed (on the other) in the same flush is kept. Adds are INSERT … ON CONFLICT DO NOTHING, so a
  // collection never loaded before (nothing to compare with) cannot duplicate a row.
  struct Link {
    const EntityInfo* owner;
    std::size_t rel;
    std::string owner_key;
    std::string target_key;
    client::Value owner_value;  // the keys as parameters, typed as their columns
    client::Value target_value;
  };
  std::vector<Link> adds;
  std::vector<Link> removes;
  std::unordered_set<std::string> added;
  std::unordered_set<std::string> removed;
  // The row's identity whichever side names it: table, then both column=value in column-name order.
  auto row_id = [](const Link& l) {
    const EntityInfo& sec = l.owner->relationships[l.rel].secondary();
    std::string a = sec.columns[0].name + '=' + l.owner_key;
    std::string b = sec.columns[1].name + '=' + l.target_key;
    if (b < a) std::swap(a, b);
    return sec.table + '\0' + a + '\0' + b;
  };
  const std::uint16_t level = state_->level();
  for (Entry* e : work) {
    if (e->status != Entry::Status::kPersistent) continue;
    const auto& rels = e->info->relationships;
    for (std::size_t i = 0; i < rels.size(); ++i) {
      const auto& rel = rels[i];
      if (rel.secondary == nullptr || !rel.loaded(e->obj.get())) continue;
      const EntityInfo& target = rel.target();
      std::vector<std::string> now;
      for (const auto& item : rel.items(e->obj.get())) {
        const Entry* te = state_->find(item.get());
        if (te != nullptr && te->status == Entry::Status::kMarkedDeleted) continue;  // its rows go with it
        now.push_back(key_text(target, item.get()));
      }
      const client::Value owner_value = e->info->encode(e->obj.get(), single_pk(*e->info));
      const std::string owner_key = key_text(*e->info, e->obj.get());
      // A removed object may be gone from memory: its key's text, typed by the server from the column.
      auto target_value = [&](const std::string& k) {
        Entry* te = state_->identity[&target].find(k);
        if (te != nullptr) return target.encode(te->obj.get(), single_pk(target));
        return client::Value::text(k, client::oid::kUnknown);
      };
      const std::vector<std::string>* known = i < e->links.size() && e->links[i] ? &*e->links[i] : nullptr;
      bool changed = false;
      for (const auto& k : now) {
        if (known != nullptr && std::find(known->begin(), known->end(), k) != known->end()) continue;
        Link l{e->info, i, owner_key, k, owner_value, target_value(k)};
        if (added.insert(row_id(l)).second) adds.push_back(std::move(l));
        changed = true;
      }
      if (known != nullptr) {
        for (const auto& k : *known) {
          if (std::find(now.begin(), now.end(), k) != now.end()) continue;
          Link l{e->info, i, owner_key, k, owner_value, target_value(k)};
          if (removed.insert(row_id(l)).second) removes.push_back(std::move(l));
          changed = true;
        }
      }
      e->links.resize(rels.size());
      e->links[i] = std::move(now);
      if (changed) e->links_written_at = level;
    }
  }
  // The other side's loaded collection (back_populates) shows the change too, as SQLAlchemy's in-memory
  // back-population would have; its recorded links follow, so it does not write the row again.
  auto other_side = [&](const Link& l, bool add) {
    const auto& rel = l.owner->relationships[l.rel];
    const std::size_t back = rel.back();
    if (back == kNone) return;
    const EntityInfo& target = rel.target();
    Entry* te = state_->identity[&target].find(l.target_key);
    Entry* oe = state_->identity[l.owner].find(l.owner_key);
    if (te == nullptr || oe == nullptr) return;
    const auto& brel = target.relationships[back];
    if (!brel.loaded(te->obj.get())) return;
    auto items = brel.items(te->obj.get());
    auto at = std::find(items.begin(), items.end(), oe->obj);
    if (add == (at != items.end())) return;
    if (add) {
      items.push_back(oe->obj);
    } else {
      items.erase(at);
    }
    brel.set_items(te->obj.get(), items, true);
    if (back < te->links.size() && te->links[back]) {
      auto& keys = *te->links[back];
      if (add) {
        keys.push_back(l.owner_key);
      } else {
        std::erase(keys, l.owner_key);
      }
    }
    te->links_written_at = level;
  };
  for (const Link& l : removes) {
    if (added.contains(row_id(l))) continue;
    (void)state_->hooks.execute(compile_secondary_delete(*l.owner, l.rel, l.owner_value, l.target_value));
    other_side(l, false);
  }
  for (const Link& l : adds) {
    (void)state_->hooks.execute(compile_secondary_insert(*l.owner, l.rel, l.owner_value, l.target_value));
    other_side(l, true);
  }
  // Objects being deleted: their association rows go first (the foreign keys cascade too, but a table made
  // elsewhere may not), and loaded collections elsewhere forget them.
  for (Entry* e : work) {
    if (e->status != Entry::Status::kMarkedDeleted) continue;
    const auto& rels = e->info->relationships;
    for (const auto& rel : rels) {
      if (rel.secondary == nullptr) continue;
      const EntityInfo& sec = rel.secondary();
      SqlWriter w;
      w.sql = "DELETE FROM " + quote(sec.table) + " WHERE " + qualified(sec.table, sec, 0) + " = " +
              w.bind(e->info->encode(e->obj.get(), single_pk(*e->info)));
      (void)state_->hooks.execute(Compiled{std::move(w.sql), std::move(w.params)});
    }
    for (Entry* o : state_->live()) {
      if (o->status == Entry::Status::kDeleted || o == e) continue;
      const auto& orels = o->info->relationships;
      for (std::size_t i = 0; i < orels.size(); ++i) {
        const auto& rel = orels[i];
        if (rel.secondary == nullptr || &rel.target() != e->info || !rel.loaded(o->obj.get())) continue;
        auto items = rel.items(o->obj.get());
        auto at = std::find(items.begin(), items.end(), e->obj);
        if (at == items.end()) continue;
        items.erase(at);
        rel.set_items(o->obj.get(), items, true);
        // Only here is the key needed: an entity with a composite key is never a many-to-many target.
        if (i < o->links.size() && o->links[i]) std::erase(*o->links[i], key_text(*e->info, e->obj.get()));
        o->links_written_at = level;
      }
    }
    e->links_written_at = level;
  }
}

void UnitOfWork::undo_failed_flush() {
  // Inside a savepoint only the savepoint is lost (SQLAlchemy's begin_nested use: try, and carry on without).
  if (state_->depth > 0) {
    bool rolled_back = false;
    try {
      rolled_back = state_->hooks.rollback_savepoint();
    } catch (...) {
    }
    if (rolled_back) {
      savepoint_rolled_back(state_->depth);
      return;
    }
  }
  try {
    rollback();
  } catch (...) {
    // A lost connection is already discarded; rollback() has reset the session state either way.
  }
}

// --- transaction end -------------------------------------------------------------------------------------

void UnitOfWork::after_commit(bool expire) {
  for (auto& e : state_->entries) {
    if (e.dead) continue;
    if (e.status == Entry::Status::kDeleted) {
      state_->remove(e);
      continue;
    }
    e.inserted_at = 0;
    e.written_at = 0;
    e.links_written_at = 0;
  }
  state_->depth = 0;
  state_->compact();
  if (expire) expire_all();
}

void UnitOfWork::rollback() {
  std::exception_ptr failed;
  try {
    state_->hooks.rollback_database();
  } catch (...) {
    failed = std::current_exception();  // the connection is lost; the objects are put back all the same
  }
  try {
    after_rollback();
  } catch (...) {
    state_->hooks.end_transaction();
    throw;
  }
  state_->hooks.end_transaction();
  if (failed) std::rethrow_exception(failed);
}

void UnitOfWork::after_rollback() {
  // SQLAlchemy expires every object at a rollback. Objects whose state the transaction changed are read again
  // now (see undo_writes); the others are only marked, as their members already hold what was last read.
  std::vector<Entry*> stale = undo_writes(1);
  state_->depth = 0;
  try {
    read_again(stale);
  } catch (const client::Error&) {
    // The connection is gone (or autobegin is off and there is none): the changed objects already show the
    // row they were last read with, and stay expired, so the next load of their rows reads them afresh.
  }
  auto self = weak_from_this();
  for (auto& e : state_->entries) {
    if (e.dead) continue;
    e.expired = true;
    e.written_at = 0;
    reset_relationships(loaders_for(state_->loaders, self, *e.info), e);
  }
  state_->compact();
}

// --- savepoints ------------------------------------------------------------------------------------------

void UnitOfWork::savepoint_begun() { ++state_->depth; }

void UnitOfWork::savepoint_released(std::size_t depth) {
  // Its writes now belong to the enclosing level: rolling that back undoes them.
  const auto inside = static_cast<std::uint16_t>(depth + 1);
  for (auto& e : state_->entries) {
    if (e.dead) continue;
    e.inserted_at = std::min(e.inserted_at, static_cast<std::uint16_t>(inside - 1));
    e.written_at = std::min(e.written_at, static_cast<std::uint16_t>(inside - 1));
    e.links_written_at = std::min(e.links_written_at, static_cast<std::uint16_t>(inside - 1));
  }
  state_->depth = static_cast<std::uint16_t>(depth - 1);
}

void UnitOfWork::savepoint_rolled_back(std::size_t depth) {
  std::vector<Entry*> stale = undo_writes(static_cast<std::uint16_t>(depth + 1));
  state_->depth = static_cast<std::uint16_t>(depth - 1);
  read_again(stale);
  auto self = weak_from_this();
  for (Entry* e : stale) reset_relationships(loaders_for(state_->loaders, self, *e->info), *e);
  state_->compact();
}

std::vector<UnitOfWork::Entry*> UnitOfWork::undo_writes(std::uint16_t level) {
  // As SQLAlchemy: objects added since leave the session (server-assigned keys cleared, so adding one again
  // inserts it afresh), deletions since are undone, and objects changed since (written, or only modified in
  // memory) are expired. A C++ object cannot load on attribute access, so expiring a changed object here
  // first puts back the row it was last read or written with (nothing left to flush), then read_again()
  // shows the row as the database now has it.
  std::vector<Entry*> stale;
  for (auto& e : state_->entries) {
    if (e.dead) continue;
    if (e.status == Entry::Status::kPending || e.inserted_at >= level) {
      if (e.inserted_at >= level && e.key_from_server) e.info->clear(e.obj.get(), e.info->pk);
      state_->remove(e);
      continue;
    }
    if (e.links_written_at >= level) {
      // Association rows written since are gone: the collections load again, as they now are.
      reset_links(loaders_for(state_->loaders, weak_from_this(), *e.info), e);
      e.links_written_at = static_cast<std::uint16_t>(level - 1);
    }
    bool changed = e.written_at >= level || e.status == Entry::Status::kMarkedDeleted;
    if (e.status == Entry::Status::kDeleted && e.written_at >= level) {
      std::string buf;
      state_->identity[e.info].insert(e.key(buf), &e);
      e.status = Entry::Status::kPersistent;
    }
    if (e.status == Entry::Status::kMarkedDeleted) e.status = Entry::Status::kPersistent;
    if (!changed && e.status == Entry::Status::kPersistent && differs_from_snapshot(e)) changed = true;
    if (!changed) continue;
    e.info->load(e.obj.get(), result_columns(e.snapshot.get(), e.snapshot_offset, e.info->columns.size()),
                 e.snapshot_row);
    e.written_at = std::min(e.written_at, static_cast<std::uint16_t>(level - 1));
    e.expired = true;
    stale.push_back(&e);
  }
  return stale;
}

void UnitOfWork::read_again(const std::vector<Entry*>& stale) {
  std::vector<const EntityInfo*> types;
  for (Entry* e : stale) {
    if (std::find(types.begin(), types.end(), e->info) == types.end()) types.push_back(e->info);
  }
  for (const EntityInfo* t : types) {
    SelectCore q;
    q.items.push_back({t, nullptr});
    if (t->composite_key()) {
      std::vector<NodePtr> any;
      for (Entry* e : stale) {
        if (e->info == t) any.push_back(key_condition(*t, key_values(*t, e->obj.get())));
      }
      q.where.push_back(list_node(Node::Kind::kOr, std::move(any), {}));
    } else {
      std::vector<client::Value> keys;
      for (Entry* e : stale) {
        if (e->info == t) keys.push_back(t->encode(e->obj.get(), t->pk));
      }
      q.where.push_back(binary_node("=", column_node(*t, t->pk),
                                    list_node(Node::Kind::kFunction, {param_node(array_of(keys))}, "ANY")));
    }
    (void)run_select(q);  // no autoflush: that would write the undone changes again
  }
}

// --- KeyIndex --------------------------------------------------------------------------------------------

std::size_t KeyIndex::probe(std::string_view key, std::size_t hash) const {
  const std::size_t mask = slots_.size() - 1;
  std::size_t free = static_cast<std::size_t>(-1);
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.entry == nullptr) return free != static_cast<std::size_t>(-1) ? free : i;
    if (s.entry == tombstone()) {
      if (free == static_cast<std::size_t>(-1)) free = i;
    } else if (s.hash == hash && s.entry->key(scratch_) == key) {
      return i;
    }
  }
}

UnitOfWork::Entry* KeyIndex::find(std::string_view key) const {
  if (used_ == 0) return nullptr;
  const Slot& s = slots_[probe(key, hash(key))];
  return s.entry == tombstone() ? nullptr : s.entry;
}

KeyIndex::Probe KeyIndex::lookup(std::string_view key) { return lookup(key, hash(key)); }

KeyIndex::Probe KeyIndex::lookup(std::string_view key, std::size_t hash) {
  if ((used_ + tombs_ + 1) * 2 > slots_.size()) grow(std::max<std::size_t>(16, (used_ + 1) * 4));
  Probe p;
  p.hash = hash;
  p.slot = probe(key, p.hash);
  UnitOfWork::Entry* e = slots_[p.slot].entry;
  p.found = e == tombstone() ? nullptr : e;
  return p;
}

void KeyIndex::insert(std::string_view key, UnitOfWork::Entry* e) {
  Probe p = lookup(key);
  fill(p, e);
}

void KeyIndex::fill(const Probe& p, UnitOfWork::Entry* e) {
  std::size_t hash = p.hash;
  Slot& s = slots_[p.slot];
  if (s.entry == nullptr) {
    ++used_;
  } else if (s.entry == tombstone()) {
    ++used_;
    --tombs_;
  }
  s.hash = hash;
  s.entry = e;
}

void KeyIndex::erase(std::string_view key, const UnitOfWork::Entry* only) {
  if (used_ == 0) return;
  Slot& s = slots_[probe(key, hash(key))];
  if (s.entry == nullptr || s.entry == tombstone() || (only != nullptr && s.entry != only)) return;
  s.entry = tombstone();
  --used_;
  ++tombs_;
}

void KeyIndex::reserve(std::size_t n) {
  if ((used_ + tombs_ + n) * 2 > slots_.size()) grow((used_ + n) * 2);
}

void KeyIndex::grow(std::size_t capacity) {
  std::size_t size = 16;
  while (size < capacity) size *= 2;
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(size, Slot{});
  used_ = 0;
  tombs_ = 0;
  for (const Slot& s : old) {
    if (s.entry == nullptr || s.entry == tombstone()) continue;
    // Keys in the old table are distinct: the first empty slot from the hash is the place (no key compare).
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = s.hash & mask;
    while (slots_[i].entry != nullptr) i = (i + 1) & mask;
    slots_[i] = s;
    ++used_;
  }
}

[[noreturn]] void throw_no_result() { throw client::NoResultFound("No row was found when one was required"); }
[[noreturn]] void throw_multiple_results() {
  throw client::MultipleResultsFound("Multiple rows were found when exactly one was required");
}

}  // namespace pooler::orm::detail
