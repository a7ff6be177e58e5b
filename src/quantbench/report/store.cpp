// RunStore over the SQLite C API: a thin statement wrapper, the schema as numbered migrations, and
// one transaction per write so a crash loses at most the item in flight.
#include "quantbench/report/store.h"

#include <sqlite3.h>

#include <chrono>
#include <cctype>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>

#include "quantbench/core/error.h"
#include "quantbench/core/sha256.h"

namespace qb::report {
namespace {

namespace fs = std::filesystem;

// Migration i (0-based) brings a database from version i to version i+1. Never edit a shipped entry;
// append a new one and raise kSchemaVersion.
const std::vector<const char*>& migrations() {
  static const std::vector<const char*> m = {
      R"sql(
      CREATE TABLE runs (
        id TEXT PRIMARY KEY, created TEXT NOT NULL, plan_text TEXT NOT NULL, plan_sha256 TEXT NOT NULL,
        status TEXT NOT NULL);
      CREATE TABLE results (
        id INTEGER PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(id),
        regime TEXT NOT NULL, task TEXT NOT NULL, candidate TEXT NOT NULL, misses TEXT NOT NULL,
        finished INTEGER NOT NULL DEFAULT 0, started TEXT NOT NULL, finished_at TEXT,
        UNIQUE (run_id, regime, task, candidate));
      CREATE TABLE manifest_facts (
        result_id INTEGER NOT NULL REFERENCES results(id), key TEXT NOT NULL, value TEXT NOT NULL,
        known INTEGER NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (result_id, key));
      CREATE TABLE metrics (
        result_id INTEGER NOT NULL REFERENCES results(id), ord INTEGER NOT NULL, name TEXT NOT NULL,
        value REAL NOT NULL, direction TEXT NOT NULL, aggregation TEXT NOT NULL, unit TEXT NOT NULL,
        stderr REAL, ci_lo REAL, ci_hi REAL, ci_level REAL, ci_method TEXT, PRIMARY KEY (result_id, name));
      CREATE TABLE items (
        result_id INTEGER NOT NULL REFERENCES results(id), item_key TEXT NOT NULL, record TEXT NOT NULL,
        PRIMARY KEY (result_id, item_key));
      )sql",
  };
  return m;
}

std::string utc_now() {
  const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// A prepared statement; every failure names the database file.
class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& path, const char* sql) : db_(db), path_(path) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK) fail_here();
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, const std::string& v) { return check(sqlite3_bind_text(s_, i, v.data(), int(v.size()), SQLITE_TRANSIENT)); }
  Stmt& bind(int i, int64_t v) { return check(sqlite3_bind_int64(s_, i, v)); }
  Stmt& bind(int i, double v) { return check(sqlite3_bind_double(s_, i, v)); }
  Stmt& bind(int i, std::optional<double> v) { return v ? bind(i, *v) : check(sqlite3_bind_null(s_, i)); }
  Stmt& bind_null(int i) { return check(sqlite3_bind_null(s_, i)); }

  bool step() {  // true while a row is available
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail_here();
  }
  int changes() const { return sqlite3_changes(db_); }
  std::string text(int c) const {
    const auto* p = sqlite3_column_text(s_, c);
    return p ? std::string(reinterpret_cast<const char*>(p), size_t(sqlite3_column_bytes(s_, c))) : std::string();
  }
  int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  double f64(int c) const { return sqlite3_column_double(s_, c); }
  bool is_null(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
  std::optional<double> opt(int c) const { return is_null(c) ? std::nullopt : std::optional<double>(f64(c)); }

 private:
  Stmt& check(int rc) {
    if (rc != SQLITE_OK) fail_here();
    return *this;
  }
  [[noreturn]] void fail_here() const { fail("{}: {}", path_, sqlite3_errmsg(db_)); }
  sqlite3* db_;
  std::string path_;
  sqlite3_stmt* s_ = nullptr;
};

void exec(sqlite3* db, const std::string& path, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db);
    sqlite3_free(err);
    fail("{}: {}", path, msg);
  }
}

// Runs fn inside BEGIN IMMEDIATE ... COMMIT, rolling back if it throws.
template <typename Fn>
auto in_transaction(sqlite3* db, const std::string& path, Fn&& fn) {
  exec(db, path, "BEGIN IMMEDIATE");
  try {
    if constexpr (std::is_void_v<decltype(fn())>) {
      fn();
      exec(db, path, "COMMIT");
    } else {
      auto r = fn();
      exec(db, path, "COMMIT");
      return r;
    }
  } catch (...) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

int schema_version(sqlite3* db, const std::string& path) {
  Stmt has(db, path, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='schema_version'");
  has.step();
  if (has.i64(0) == 0) return 0;
  Stmt v(db, path, "SELECT max(version) FROM schema_version");
  if (!v.step() || v.is_null(0)) return 0;
  return int(v.i64(0));
}

void migrate(sqlite3* db, const std::string& path) {
  auto checked_version = [&] {
    const int v = schema_version(db, path);
    if (v > kSchemaVersion)
      fail("{}: schema version {} is newer than this quantbench understands (up to {}); use a newer quantbench",
           path, v, kSchemaVersion);
    return v;
  };
  if (checked_version() == kSchemaVersion) return;
  in_transaction(db, path, [&] {
    // Read again under the write lock: another process may have migrated the file since (two processes
    // opening an older store at once), and each migration must be applied once.
    const int have = checked_version();
    exec(db, path, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied TEXT NOT NULL)");
    for (int v = have; v < kSchemaVersion; ++v) {
      exec(db, path, migrations()[size_t(v)]);
      Stmt ins(db, path, "INSERT INTO schema_version (version, applied) VALUES (?, ?)");
      ins.bind(1, int64_t(v + 1)).bind(2, utc_now()).step();
    }
  });
}

sqlite3* open_db(const std::string& path, bool create) {
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    fail("{}: cannot open: {}", path, msg);
  }
  try {
    sqlite3_busy_timeout(db, 5000);
    exec(db, path, "PRAGMA foreign_keys = ON");
    // The first statement that reads the file is where a corrupt or non-SQLite file shows itself.
    Stmt q(db, path, "PRAGMA journal_mode = WAL");
    q.step();
    if (q.text(0) != "wal") fail("{}: could not switch to WAL journal mode (got '{}')", path, q.text(0));
    // In WAL mode NORMAL keeps every committed item across a killed process (what resumption needs);
    // only a power loss may drop the last few, and it saves an fsync per item.
    exec(db, path, "PRAGMA synchronous = NORMAL");
  } catch (const Error& e) {
    sqlite3_close(db);
    fail("{} (not a usable quantbench results database)", e.what());
  }
  return db;
}

std::string run_id_for(const std::string& dir, const std::string& created, const std::string& plan_sha) {
  const std::string seed = dir + "|" + created + "|" + plan_sha;
  const std::string h = sha256_hex({reinterpret_cast<const uint8_t*>(seed.data()), seed.size()});
  std::string stamp;
  for (char c : created)
    if (std::isdigit(static_cast<unsigned char>(c))) stamp += c;
  return "run-" + stamp.substr(0, 8) + "-" + stamp.substr(8) + "-" + h.substr(0, 8);
}

Direction direction_from(const std::string& s, const std::string& path) {
  for (Direction d : {Direction::HigherIsBetter, Direction::LowerIsBetter, Direction::Neither})
    if (direction_name(d) == s) return d;
  fail("{}: unknown metric direction '{}'", path, s);
}

}  // namespace

RunStore RunStore::create(const std::string& dir, const std::string& plan_text) {
  std::error_code ec;
  if (fs::exists(fs::path(dir) / kDatabaseFile, ec)) fail("{}: already holds a run ({} exists)", dir, kDatabaseFile);
  fs::create_directories(fs::path(dir) / "artifacts", ec);
  if (!ec) fs::create_directories(fs::path(dir) / "reports", ec);
  if (ec) fail("{}: cannot create run directory: {}", dir, ec.message());
  {
    std::ofstream plan(fs::path(dir) / kPlanFile, std::ios::binary);
    plan << plan_text;
    if (!plan) fail("{}/{}: cannot write the plan copy", dir, kPlanFile);
  }
  // The database is built under a temporary name and renamed into place once it holds its schema and its
  // run row, so a reader (`quantbench runs`, or a test watching a run) never opens a half-made file: one
  // that did raced this process's switch to WAL, which then failed with "database is locked".
  const std::string path = (fs::path(dir) / kDatabaseFile).string(), building = path + ".creating";
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(building + suffix, ec);  // a killed earlier attempt
  sqlite3* db = open_db(building, true);
  try {
    migrate(db, building);
    const std::string created = utc_now();
    const std::string sha = sha256_hex({reinterpret_cast<const uint8_t*>(plan_text.data()), plan_text.size()});
    Stmt ins(db, building, "INSERT INTO runs (id, created, plan_text, plan_sha256, status) VALUES (?,?,?,?,'running')");
    ins.bind(1, run_id_for(fs::absolute(dir).string(), created, sha)).bind(2, created).bind(3, plan_text).bind(4, sha).step();
  } catch (...) {
    sqlite3_close(db);
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(building + suffix, ec);
    throw;
  }
  // Closing the last connection checkpoints the WAL into the file and removes the -wal and -shm files.
  if (sqlite3_close(db) != SQLITE_OK) fail("{}: cannot close the new database", building);
  fs::rename(building, path, ec);
  if (ec) fail("{}: cannot move the new database into place: {}", path, ec.message());
  return RunStore(dir, open_db(path, false));
}

RunStore RunStore::open(const std::string& dir) {
  const std::string path = (fs::path(dir) / kDatabaseFile).string();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail("{}: not a directory", dir);
  if (!fs::exists(path, ec)) fail("{}: not a quantbench run directory (no {})", dir, kDatabaseFile);
  RunStore store(dir, open_db(path, false));
  migrate(store.db_, path);
  Stmt c(store.db_, path, "SELECT count(*) FROM runs");
  c.step();
  if (c.i64(0) != 1) fail("{}: expected exactly one run row, found {}", path, c.i64(0));
  return store;
}

RunStore::RunStore(RunStore&& o) noexcept : dir_(std::move(o.dir_)), db_(o.db_) { o.db_ = nullptr; }
RunStore& RunStore::operator=(RunStore&& o) noexcept {
  if (this != &o) {
    sqlite3_close(db_);
    dir_ = std::move(o.dir_);
    db_ = o.db_;
    o.db_ = nullptr;
  }
  return *this;
}
RunStore::~RunStore() { sqlite3_close(db_); }

RunInfo RunStore::info() const {
  const std::string path = db_path();
  Stmt q(db_, path, "SELECT id, created, plan_sha256, plan_text, status FROM runs");
  if (!q.step()) fail("{}: no run row", path);
  return {dir_, q.text(0), q.text(1), q.text(2), q.text(3), q.text(4)};
}

void RunStore::set_status(const std::string& status) {
  Stmt(db_, db_path(), "UPDATE runs SET status = ?").bind(1, status).step();
}

int64_t RunStore::begin_result(const std::string& regime, const std::string& task, const std::string& candidate,
                               const Manifest& manifest, const std::string& misses) {
  const std::string path = db_path();
  return in_transaction(db_, path, [&]() -> int64_t {
    Stmt find(db_, path, "SELECT id FROM results WHERE regime = ? AND task = ? AND candidate = ?");
    find.bind(1, regime).bind(2, task).bind(3, candidate);
    if (find.step()) {
      const int64_t id = find.i64(0);
      Manifest stored;
      Stmt f(db_, path, "SELECT key, value, known, reason FROM manifest_facts WHERE result_id = ?");
      f.bind(1, id);
      while (f.step()) stored.set_fact(f.text(0), Fact{f.text(1), f.i64(2) != 0, f.text(3)});
      const auto diff = diff_manifests(stored, manifest);
      if (!diff.empty())
        fail("{}: resuming {}/{}/{} with a different manifest (field '{}': stored '{}', now '{}')", path, regime, task,
             candidate, diff[0].key, diff[0].a.value, diff[0].b.value);
      return id;
    }
    Stmt run(db_, path, "SELECT id FROM runs");
    run.step();
    Stmt ins(db_, path, "INSERT INTO results (run_id, regime, task, candidate, misses, started) VALUES (?,?,?,?,?,?)");
    ins.bind(1, run.text(0)).bind(2, regime).bind(3, task).bind(4, candidate).bind(5, misses).bind(6, utc_now()).step();
    const int64_t id = sqlite3_last_insert_rowid(db_);
    for (const auto& [k, f] : manifest.facts()) {
      Stmt one(db_, path, "INSERT INTO manifest_facts (result_id, key, value, known, reason) VALUES (?,?,?,?,?)");
      one.bind(1, id).bind(2, k).bind(3, f.value).bind(4, int64_t(f.known)).bind(5, f.reason).step();
    }
    return id;
  });
}

bool RunStore::append_item(int64_t result_id, const std::string& item_key, const nlohmann::json& record) {
  const std::string path = db_path();
  return in_transaction(db_, path, [&] {
    Stmt ins(db_, path, "INSERT OR IGNORE INTO items (result_id, item_key, record) VALUES (?,?,?)");
    ins.bind(1, result_id).bind(2, item_key).bind(3, record.dump());
    ins.step();
    return ins.changes() == 1;
  });
}

std::set<std::string> RunStore::done_items(int64_t result_id) const {
  std::set<std::string> out;
  Stmt q(db_, db_path(), "SELECT item_key FROM items WHERE result_id = ?");
  q.bind(1, result_id);
  while (q.step()) out.insert(q.text(0));
  return out;
}

std::map<std::string, nlohmann::json> RunStore::item_records(int64_t result_id) const {
  std::map<std::string, nlohmann::json> out;
  Stmt q(db_, db_path(), "SELECT item_key, record FROM items WHERE result_id = ?");
  q.bind(1, result_id);
  while (q.step()) {
    nlohmann::json rec = nlohmann::json::parse(q.text(1), nullptr, false);
    if (rec.is_discarded()) fail("{}: result {} item '{}': record is not valid JSON", db_path(), result_id, q.text(0));
    out.emplace(q.text(0), std::move(rec));
  }
  return out;
}

void RunStore::finish_result(int64_t result_id, const std::vector<Metric>& metrics) {
  const std::string path = db_path();
  in_transaction(db_, path, [&] {
    Stmt chk(db_, path, "SELECT count(*) FROM results WHERE id = ?");
    chk.bind(1, result_id).step();
    if (chk.i64(0) != 1) fail("{}: no result with id {}", path, result_id);
    Stmt(db_, path, "DELETE FROM metrics WHERE result_id = ?").bind(1, result_id).step();
    int64_t ord = 0;
    for (const auto& m : metrics) {
      Stmt ins(db_, path,
               "INSERT INTO metrics (result_id, ord, name, value, direction, aggregation, unit, stderr, ci_lo, ci_hi, "
               "ci_level, ci_method) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)");
      ins.bind(1, result_id).bind(2, ord++).bind(3, m.name).bind(4, m.value).bind(5, std::string(direction_name(m.direction)));
      ins.bind(6, m.aggregation).bind(7, m.unit).bind(8, m.stderr_);
      if (m.interval) ins.bind(9, m.interval->lo).bind(10, m.interval->hi).bind(11, m.interval->level).bind(12, m.interval->method);
      else ins.bind_null(9).bind_null(10).bind_null(11).bind_null(12);
      ins.step();
    }
    Stmt(db_, path, "UPDATE results SET finished = 1, finished_at = ? WHERE id = ?").bind(1, utc_now()).bind(2, result_id).step();
  });
}

std::vector<StoredResult> RunStore::load_results() const {
  const std::string path = db_path();
  std::vector<StoredResult> out;
  Stmt q(db_, path, "SELECT id, regime, task, candidate, misses, finished FROM results ORDER BY id");
  while (q.step()) {
    const int64_t id = q.i64(0);
    Manifest m;
    Stmt f(db_, path, "SELECT key, value, known, reason FROM manifest_facts WHERE result_id = ? ORDER BY key");
    f.bind(1, id);
    while (f.step()) m.set_fact(f.text(0), Fact{f.text(1), f.i64(2) != 0, f.text(3)});
    // Stored results are loaded as they were recorded; completeness was checked when they were made.
    StoredResult sr{id, q.text(3), q.i64(5) != 0, Result(q.text(1), q.text(2), std::move(m), {})};
    sr.result.set_misses(q.text(4));
    Stmt mq(db_, path,
            "SELECT name, value, direction, aggregation, unit, stderr, ci_lo, ci_hi, ci_level, ci_method FROM metrics "
            "WHERE result_id = ? ORDER BY ord");
    mq.bind(1, id);
    while (mq.step()) {
      Metric met;
      met.name = mq.text(0);
      met.value = mq.f64(1);
      met.direction = direction_from(mq.text(2), path);
      met.aggregation = mq.text(3);
      met.unit = mq.text(4);
      met.stderr_ = mq.opt(5);
      if (!mq.is_null(6)) met.interval = Interval{mq.f64(6), mq.f64(7), mq.f64(8), mq.text(9)};
      sr.result.add_metric(std::move(met));
    }
    Stmt iq(db_, path, "SELECT item_key, record FROM items WHERE result_id = ? ORDER BY rowid");
    iq.bind(1, id);
    while (iq.step()) {
      nlohmann::json rec = nlohmann::json::parse(iq.text(1), nullptr, false);
      if (rec.is_discarded()) fail("{}: result {} item '{}': record is not valid JSON", path, id, iq.text(0));
      if (rec.is_object() && !rec.contains("key")) rec["key"] = iq.text(0);
      sr.result.add_item(std::move(rec));
    }
    out.push_back(std::move(sr));
  }
  return out;
}

}  // namespace qb::report
