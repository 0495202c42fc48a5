// PostgreSQL JDBC (pgjdbc, Debian's libpostgresql-jdbc-java) prepared statements, unchanged, through a
// transaction-mode pooler; compiled and run by prepared_test.
//
// Usage: java -cp DIR:/usr/share/java/postgresql.jar JdbcPrepared HOST PORT USER PASSWORD DBNAME
//            [PREPARE_THRESHOLD|default] [THREADS]
//
// pgjdbc switches a PreparedStatement to a named server-side statement after prepareThreshold executions
// (default 5; 1 = from the first). Every statement here runs well past that, in several threads (more than
// the pool has server connections) with autocommit on and off, and in batches (Bind/Execute per row, one
// Sync). Each result is checked, and each statement must report that it did go server-prepared, so the
// workload cannot quietly pass with unnamed statements only. Prints a summary; exits 1 on any error.
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.postgresql.PGStatement;

public final class JdbcPrepared {
  // Executions of each statement: several times the default prepareThreshold.
  private static final int EXECUTIONS = 20;
  // Distinct statements alive at once: more than the pooler's max_prepared_statements (10 in the test).
  private static final int DISTINCT = 12;

  private static final AtomicLong queries = new AtomicLong();
  private static final AtomicLong serverPrepared = new AtomicLong();

  private static final class Failure extends Exception {
    Failure(String message) {
      super(message);
    }
  }

  private static void check(long got, long want, String what) throws Failure {
    if (got != want) {
      throw new Failure(what + ": got " + got + ", want " + want);
    }
  }

  private static void checkText(String got, String want, String what) throws Failure {
    if (!want.equals(got)) {
      throw new Failure(what + ": got " + got + ", want " + want);
    }
  }

  // The statement's next execution (and so, after this many, its previous ones) uses a named server statement.
  private static void requireServerPrepared(PreparedStatement ps, String what) throws SQLException, Failure {
    if (!ps.unwrap(PGStatement.class).isUseServerPrepare()) {
      throw new Failure(what + ": the driver did not switch to a server-prepared statement");
    }
    serverPrepared.incrementAndGet();
  }

  private static long singleLong(PreparedStatement ps) throws SQLException, Failure {
    try (ResultSet rs = ps.executeQuery()) {
      if (!rs.next()) {
        throw new Failure("no row");
      }
      long value = rs.getLong(1);
      if (rs.next()) {
        throw new Failure("more than one row");
      }
      queries.incrementAndGet();
      return value;
    }
  }

  private static void worker(String url, Properties props, int w) throws Exception {
    try (Connection c = DriverManager.getConnection(url, props)) {
      // Autocommit: every execution is its own transaction, so consecutive ones may get different server
      // connections.
      try (PreparedStatement ps = c.prepareStatement("SELECT ?::int + ?::int")) {
        for (int i = 0; i < EXECUTIONS; i++) {
          ps.setInt(1, i);
          ps.setInt(2, w);
          check(singleLong(ps), i + w, "worker " + w + " sum " + i);
        }
        requireServerPrepared(ps, "worker " + w + " sum");
      }
      // Many named statements in use at once, in turn.
      List<PreparedStatement> many = new ArrayList<>();
      try {
        for (int k = 0; k < DISTINCT; k++) {
          many.add(c.prepareStatement("SELECT ?::int * " + (k + 1)));
        }
        for (int i = 0; i < EXECUTIONS; i++) {
          for (int k = 0; k < DISTINCT; k++) {
            PreparedStatement ps = many.get(k);
            ps.setInt(1, i + w);
            check(singleLong(ps), (long) (i + w) * (k + 1), "worker " + w + " product " + i + " * " + (k + 1));
          }
        }
        for (int k = 0; k < DISTINCT; k++) {
          requireServerPrepared(many.get(k), "worker " + w + " product statement " + k);
        }
      } finally {
        for (PreparedStatement ps : many) {
          ps.close();
        }
      }
      // Text in, text out.
      try (PreparedStatement ps = c.prepareStatement("SELECT ?::text || '-' || ?::text")) {
        for (int i = 0; i < EXECUTIONS; i++) {
          ps.setString(1, "w" + w);
          ps.setString(2, "i" + i);
          try (ResultSet rs = ps.executeQuery()) {
            rs.next();
            checkText(rs.getString(1), "w" + w + "-i" + i, "worker " + w + " text " + i);
            queries.incrementAndGet();
          }
        }
        requireServerPrepared(ps, "worker " + w + " text");
      }

      // Autocommit off: the driver sends BEGIN with the first statement of each transaction.
      c.setAutoCommit(false);
      try (PreparedStatement ins = c.prepareStatement("INSERT INTO jdbc_items (worker, n) VALUES (?, ?)");
           PreparedStatement cnt = c.prepareStatement("SELECT count(*) FROM jdbc_items WHERE worker = ?")) {
        for (int t = 0; t < EXECUTIONS; t++) {
          ins.setInt(1, w);
          ins.setInt(2, t);
          check(ins.executeUpdate(), 1, "worker " + w + " insert " + t);
          queries.incrementAndGet();
          cnt.setInt(1, w);
          check(singleLong(cnt), t + 1, "worker " + w + " count in transaction " + t);
          c.commit();
        }
        // A rolled-back insert is gone.
        ins.setInt(1, w);
        ins.setInt(2, -1);
        check(ins.executeUpdate(), 1, "worker " + w + " insert to roll back");
        c.rollback();
        cnt.setInt(1, w);
        check(singleLong(cnt), EXECUTIONS, "worker " + w + " count after rollback");
        c.commit();
        // A batch: Parse once, then Bind/Execute per row and one Sync.
        for (int n = 0; n < 50; n++) {
          ins.setInt(1, w);
          ins.setInt(2, 1000 + n);
          ins.addBatch();
        }
        int[] counts = ins.executeBatch();
        check(counts.length, 50, "worker " + w + " batch size");
        for (int r : counts) {
          if (r != 1 && r != Statement.SUCCESS_NO_INFO) {
            throw new Failure("worker " + w + " batch row count " + r);
          }
        }
        queries.addAndGet(50);
        c.commit();
        cnt.setInt(1, w);
        check(singleLong(cnt), EXECUTIONS + 50, "worker " + w + " count after batch");
        c.commit();
        requireServerPrepared(ins, "worker " + w + " insert");
        requireServerPrepared(cnt, "worker " + w + " count");
      }
      c.setAutoCommit(true);
      // The same statements with autocommit on again, after the transactions.
      try (PreparedStatement cnt = c.prepareStatement("SELECT count(*) FROM jdbc_items WHERE worker = ?")) {
        for (int i = 0; i < EXECUTIONS; i++) {
          cnt.setInt(1, w);
          check(singleLong(cnt), EXECUTIONS + 50, "worker " + w + " autocommit count " + i);
        }
        requireServerPrepared(cnt, "worker " + w + " autocommit count");
      }
    }
  }

  public static void main(String[] args) throws Exception {
    if (args.length < 5) {
      System.err.println("usage: JdbcPrepared HOST PORT USER PASSWORD DBNAME [PREPARE_THRESHOLD|default] [THREADS]");
      System.exit(2);
    }
    String threshold = args.length > 5 ? args[5] : "default";
    int threads = args.length > 6 ? Integer.parseInt(args[6]) : 6;
    String url = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/" + args[4]
        + "?sslmode=disable&connectTimeout=20&socketTimeout=120";
    if (!threshold.equals("default")) {
      url += "&prepareThreshold=" + threshold;
    }
    Properties props = new Properties();
    props.setProperty("user", args[2]);
    props.setProperty("password", args[3]);

    String driverVersion;
    try (Connection c = DriverManager.getConnection(url, props); Statement s = c.createStatement()) {
      driverVersion = c.getMetaData().getDriverVersion();
      s.execute("DROP TABLE IF EXISTS jdbc_items");
      s.execute("CREATE TABLE jdbc_items (worker int NOT NULL, n int NOT NULL)");
    }

    ExecutorService pool = Executors.newFixedThreadPool(threads);
    List<Future<?>> futures = new ArrayList<>();
    final String finalUrl = url;
    for (int w = 0; w < threads; w++) {
      final int worker = w;
      futures.add(pool.submit(() -> {
        worker(finalUrl, props, worker);
        return null;
      }));
    }
    pool.shutdown();
    int failed = 0;
    for (int w = 0; w < futures.size(); w++) {
      try {
        futures.get(w).get(170, TimeUnit.SECONDS);
      } catch (Exception e) {
        failed++;
        System.err.println("worker " + w + ":");
        Throwable cause = e.getCause() != null ? e.getCause() : e;
        cause.printStackTrace();
      }
    }
    if (failed > 0) {
      System.out.println("jdbc " + driverVersion + " prepareThreshold=" + threshold + " FAILED: " + failed + " of "
          + threads + " workers");
      System.exit(1);
    }
    System.out.println("jdbc " + driverVersion + " prepareThreshold=" + threshold + " threads=" + threads
        + " queries=" + queries.get() + " server_prepared=" + serverPrepared.get() + " ok");
    System.exit(0);
  }
}
