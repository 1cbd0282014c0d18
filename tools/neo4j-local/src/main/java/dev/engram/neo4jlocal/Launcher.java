/*
 * Launcher - run Neo4j Community embedded, reachable only over Bolt on loopback.
 *
 * Why: engram's tests, benchmarks and developers need a real Neo4j 5.26 without a
 * system install.  This starts the database management service on a data
 * directory (the Neo4j "home": DIR/data, DIR/logs), enables Bolt on
 * 127.0.0.1:PORT with authentication, disables HTTP/HTTPS, makes sure the
 * `neo4j` user has the requested password with no forced change, prints
 * "bolt://127.0.0.1:PORT" on stdout once Bolt accepts connections
 * ("bolt+s://..." when --conf server.bolt.tls_level=REQUIRED), and shuts
 * down cleanly on SIGTERM/SIGINT (JVM shutdown hook).
 *
 * Lifecycle:
 *
 *   parse args ──► lock DIR/neo4j.lock ──(held)──► exit 3 "already running"
 *                        │
 *                        ▼
 *                  build DBMS ──(fails)──► exit 1
 *                        │
 *                        ▼
 *                  set password via system db ──► write DIR/neo4j.uri
 *                        │                         print URI, "READY"
 *                        ▼
 *                  wait ──SIGTERM──► shutdown hook: delete neo4j.uri,
 *                                    DBMS shutdown, release lock ──► exit
 *
 * The lock is an OS file lock (FileChannel.tryLock), so it disappears with
 * the process even after SIGKILL; Neo4j's own store lock is a second guard.
 *
 * Exit codes: 0 clean shutdown, 1 start failure, 2 usage error, 3 data
 * directory already in use.
 */
package dev.engram.neo4jlocal;

import java.io.IOException;
import java.io.PrintStream;
import java.io.Writer;
import java.net.InetAddress;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.ConnectorPortRegister;
import org.neo4j.configuration.connectors.ConnectorType;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.graphdb.Transaction;
import org.neo4j.internal.helpers.HostnamePort;
import org.neo4j.kernel.internal.GraphDatabaseAPI;

public final class Launcher {
    static final int EXIT_FAIL = 1;
    static final int EXIT_USAGE = 2;
    static final int EXIT_IN_USE = 3;

    private static final String USAGE = String.join("\n",
            "usage: Launcher --data DIR [--port PORT] [--host 127.0.0.1] [--password PW]",
            "                [--page-cache SIZE] [--lock-timeout DURATION] [--conf key=value]...",
            "  --data DIR         Neo4j home (data/, logs/ and neo4j.lock live here)",
            "  --port PORT        Bolt port on loopback; 0 picks a free one (default 7687)",
            "  --host ADDR        listen address, must be a loopback address (default 127.0.0.1)",
            "  --password PW      password for user neo4j (default: $NEO4J_PASSWORD), >= 8 chars;",
            "                     required on first start, else the stored one is kept",
            "  --page-cache SIZE  db.memory.pagecache.size (default 256m)",
            "  --lock-timeout D   db.lock.acquisition.timeout (default 30s)",
            "  --conf key=value   any other Neo4j setting (repeatable; overrides the defaults)",
            "  --watch-pid PID    shut down (cleanly) once process PID is gone: a test or",
            "                     benchmark killed with SIGKILL does not leave its Neo4j behind");

    private Launcher() {
    }

    /** Parsed command line. */
    static final class Options {
        Path data;
        int port = 7687;
        String host = "127.0.0.1";
        String password = System.getenv("NEO4J_PASSWORD");
        String pageCache = "256m";
        String lockTimeout = "30s";
        long watchPid = 0;
        final Map<String, String> conf = new LinkedHashMap<>();
    }

    static final class UsageException extends Exception {
        private static final long serialVersionUID = 1L;

        UsageException(String msg) {
            super(msg);
        }
    }

    static Options parse(String[] args) throws UsageException {
        Options o = new Options();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("-h") || a.equals("--help")) {
                throw new UsageException("");
            }
            if (i + 1 >= args.length) {
                throw new UsageException("missing value for " + a);
            }
            String v = args[++i];
            switch (a) {
                case "--data" -> o.data = Path.of(v).toAbsolutePath().normalize();
                case "--port" -> {
                    try {
                        o.port = Integer.parseInt(v);
                    } catch (NumberFormatException e) {
                        throw new UsageException("bad port: " + v);
                    }
                    if (o.port < 0 || o.port > 65535) {
                        throw new UsageException("bad port: " + v);
                    }
                }
                case "--host" -> o.host = v;
                case "--password" -> o.password = v;
                case "--page-cache" -> o.pageCache = v;
                case "--lock-timeout" -> o.lockTimeout = v;
                case "--watch-pid" -> {
                    try {
                        o.watchPid = Long.parseLong(v);
                    } catch (NumberFormatException e) {
                        throw new UsageException("bad pid: " + v);
                    }
                    if (o.watchPid <= 0) {
                        throw new UsageException("bad pid: " + v);
                    }
                }
                case "--conf" -> {
                    int eq = v.indexOf('=');
                    if (eq <= 0) {
                        throw new UsageException("--conf wants key=value, got: " + v);
                    }
                    o.conf.put(v.substring(0, eq).trim(), v.substring(eq + 1).trim());
                }
                default -> throw new UsageException("unknown option: " + a);
            }
        }
        if (o.data == null) {
            throw new UsageException("--data is required");
        }
        if (o.password != null && o.password.isEmpty()) {
            o.password = null;
        }
        if (o.password != null && o.password.length() < 8) {
            // Neo4j's default dbms.security.auth_minimum_password_length.
            throw new UsageException("password must be at least 8 characters");
        }
        try {
            if (!InetAddress.getByName(o.host).isLoopbackAddress()) {
                throw new UsageException("refusing non-loopback listen address: " + o.host);
            }
        } catch (IOException e) {
            throw new UsageException("bad host: " + o.host);
        }
        return o;
    }

    public static void main(String[] args) {
        PrintStream out = System.out;
        Options o;
        try {
            o = parse(args);
        } catch (UsageException e) {
            if (!e.getMessage().isEmpty()) {
                System.err.println("neo4j-local: " + e.getMessage());
            }
            System.err.println(USAGE);
            System.exit(e.getMessage().isEmpty() ? 0 : EXIT_USAGE);
            return;
        }
        try {
            int rc = run(o, out);
            if (rc != 0) {
                System.exit(rc);
            }
            // rc 0 means the shutdown hook has run: the JVM is already exiting,
            // and System.exit would block inside the shutdown sequence.
        } catch (Throwable t) {
            System.err.println("neo4j-local: start failed: " + t);
            t.printStackTrace(System.err);
            System.exit(EXIT_FAIL);
        }
    }

    static int run(Options o, PrintStream out) throws Exception {
        Files.createDirectories(o.data);
        Path lockPath = o.data.resolve("neo4j.lock");
        FileChannel lockChannel = FileChannel.open(lockPath, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        FileLock lock;
        try {
            lock = lockChannel.tryLock();
        } catch (OverlappingFileLockException e) {
            lock = null;
        }
        if (lock == null) {
            System.err.println("neo4j-local: data directory " + o.data
                    + " is already in use by another running Neo4j (lock " + lockPath + " is held)");
            lockChannel.close();
            return EXIT_IN_USE;
        }

        Path uriFile = o.data.resolve("neo4j.uri");
        Files.deleteIfExists(uriFile);

        DatabaseManagementServiceBuilder b = new DatabaseManagementServiceBuilder(o.data);
        // Our defaults, each skipped when --conf names the same key, so the
        // user's value always wins without depending on merge order.
        setDefault(b, o, BoltConnector.enabled, true);
        setDefault(b, o, BoltConnector.listen_address, new SocketAddress(o.host, o.port));
        setDefault(b, o, BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED);
        setDefault(b, o, HttpConnector.enabled, false);
        setDefault(b, o, HttpsConnector.enabled, false);
        setDefault(b, o, GraphDatabaseSettings.auth_enabled, true);
        setDefault(b, o, GraphDatabaseSettings.pagecache_memory, parseBytes(o.pageCache));
        setDefault(b, o, GraphDatabaseSettings.lock_acquisition_timeout, parseDuration(o.lockTimeout));
        // Neo4j's own default keeps two days of transaction logs; writing
        // 1536-dimension vectors, a busy day can be tens of gigabytes of them
        // and fill the disk.  Keep about 1 GB: enough for recovery, and no
        // backups are taken from this instance.
        setDefault(b, o, GraphDatabaseSettings.keep_logical_logs, "1G size");
        if (!o.conf.isEmpty()) {
            // The builder has no raw-string setter; a generated properties file
            // lets Neo4j parse and validate values exactly as in neo4j.conf.
            Path extra = o.data.resolve("neo4j-extra.conf");
            try (Writer w = Files.newBufferedWriter(extra, StandardCharsets.UTF_8)) {
                w.write("# generated by neo4j-local from --conf options; rewritten at every start\n");
                for (Map.Entry<String, String> e : o.conf.entrySet()) {
                    w.write(e.getKey() + "=" + e.getValue() + "\n");
                }
            }
            b.loadPropertiesFromFile(extra);
        }

        DatabaseManagementService dbms = b.build();
        CountDownLatch stopped = new CountDownLatch(1);
        final FileLock heldLock = lock;
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.err.println("neo4j-local: shutting down");
            try {
                Files.deleteIfExists(uriFile);
            } catch (IOException ignored) {
                // best effort; the wrapper checks the pid anyway
            }
            try {
                dbms.shutdown();
            } catch (Throwable t) {
                System.err.println("neo4j-local: shutdown error: " + t);
            }
            try {
                heldLock.release();
                lockChannel.close();
            } catch (IOException ignored) {
                // the OS drops the lock with the process
            }
            System.err.println("neo4j-local: stopped");
            stopped.countDown();
        }, "neo4j-local-shutdown"));

        try {
            ensurePassword(dbms, o.password);
        } catch (Exception e) {
            System.err.println("neo4j-local: could not set the neo4j password: " + e.getMessage());
            return EXIT_FAIL; // main exits, the shutdown hook stops the DBMS
        }

        GraphDatabaseAPI db = (GraphDatabaseAPI) dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME);
        HostnamePort bound = db.getDependencyResolver()
                .resolveDependency(ConnectorPortRegister.class)
                .getLocalAddress(ConnectorType.BOLT);
        if (bound == null) {
            throw new IllegalStateException("Bolt connector did not register a local address");
        }
        // A client must know that Bolt speaks TLS only here: the scheme says so.
        String tls = o.conf.getOrDefault(BoltConnector.encryption_level.name(), "DISABLED");
        String scheme = tls.equalsIgnoreCase("REQUIRED") ? "bolt+s" : "bolt";
        String uri = scheme + "://" + o.host + ":" + bound.getPort();
        Path tmp = o.data.resolve("neo4j.uri.tmp");
        // Second line: our pid, so a reader can tell this file from a stale one.
        Files.writeString(tmp, uri + "\n" + ProcessHandle.current().pid() + "\n", StandardCharsets.UTF_8);
        Files.move(tmp, uriFile, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        out.println(uri);
        out.flush();
        System.err.println("neo4j-local: READY " + uri + " (Neo4j " + neo4jVersion(dbms) + ", data " + o.data + ")");
        if (o.watchPid > 0) {
            watch(o.watchPid);
        }

        stopped.await();
        return 0;
    }

    /**
     * Exit (through the shutdown hook, so the store is closed cleanly) once
     * the process that owns this instance is gone.  A harness that kills a
     * test with SIGKILL never runs the test's cleanup; without this, the
     * JVM - in its own session - would run on and hold memory and CPU.
     */
    private static void watch(long pid) {
        Thread t = new Thread(() -> {
            while (ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
                try {
                    Thread.sleep(1000);
                } catch (InterruptedException e) {
                    return;
                }
            }
            System.err.println("neo4j-local: watched process " + pid + " is gone; shutting down");
            System.exit(0);
        }, "neo4j-local-watch");
        t.setDaemon(true);
        t.start();
    }

    private static <T> void setDefault(DatabaseManagementServiceBuilder b, Options o,
                                       org.neo4j.graphdb.config.Setting<T> s, T value) {
        if (!o.conf.containsKey(s.name())) {
            b.setConfig(s, value);
        }
    }

    /**
     * Give user neo4j the wanted password with no forced change.  Embedded
     * transactions on the system database run with full rights, so this works
     * whatever the current password is.  Neo4j refuses to "change" a password
     * to the same value; then only the change-required flag is cleared.
     */
    static void ensurePassword(DatabaseManagementService dbms, String password) {
        GraphDatabaseService sys = dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME);
        if (password == null) {
            // Restart without a password: keep the stored one, but never leave
            // the factory default (which forces a change) in place.
            boolean changeRequired;
            try (Transaction tx = sys.beginTx();
                 var r = tx.execute("SHOW USERS YIELD user, passwordChangeRequired "
                         + "WHERE user = 'neo4j' RETURN passwordChangeRequired AS c")) {
                changeRequired = !r.hasNext() || Boolean.TRUE.equals(r.next().get("c"));
            }
            if (changeRequired) {
                throw new IllegalStateException("first start needs a password: pass --password or set NEO4J_PASSWORD");
            }
            System.err.println("neo4j-local: keeping the stored password for user neo4j");
            return;
        }
        try (Transaction tx = sys.beginTx()) {
            tx.execute("ALTER USER neo4j SET PASSWORD $pw CHANGE NOT REQUIRED", Map.of("pw", password)).close();
            tx.commit();
            System.err.println("neo4j-local: password for user neo4j set");
        } catch (RuntimeException e) {
            if (!String.valueOf(e.getMessage()).contains("cannot be the same")) {
                throw e;
            }
            try (Transaction tx = sys.beginTx()) {
                tx.execute("ALTER USER neo4j SET PASSWORD CHANGE NOT REQUIRED").close();
                tx.commit();
            }
            System.err.println("neo4j-local: password for user neo4j unchanged");
        }
    }

    private static String neo4jVersion(DatabaseManagementService dbms) {
        GraphDatabaseService sys = dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME);
        try (Transaction tx = sys.beginTx();
             var r = tx.execute("CALL dbms.components() YIELD versions RETURN versions[0] AS v")) {
            return r.hasNext() ? String.valueOf(r.next().get("v")) : "?";
        } catch (RuntimeException e) {
            return "?";
        }
    }

    /** "256m", "1g", "512k", "1048576" -> bytes. */
    static long parseBytes(String s) {
        String t = s.trim().toLowerCase();
        long mul = 1;
        char last = t.isEmpty() ? ' ' : t.charAt(t.length() - 1);
        switch (last) {
            case 'k' -> mul = 1L << 10;
            case 'm' -> mul = 1L << 20;
            case 'g' -> mul = 1L << 30;
            default -> {
            }
        }
        if (mul != 1) {
            t = t.substring(0, t.length() - 1);
        }
        return Long.parseLong(t.trim()) * mul;
    }

    /** "30s", "500ms", "2m", "0" (= no timeout) -> Duration. */
    static Duration parseDuration(String s) {
        String t = s.trim().toLowerCase();
        if (t.endsWith("ms")) {
            return Duration.ofMillis(Long.parseLong(t.substring(0, t.length() - 2)));
        }
        if (t.endsWith("s")) {
            return Duration.ofSeconds(Long.parseLong(t.substring(0, t.length() - 1)));
        }
        if (t.endsWith("m")) {
            return Duration.ofMinutes(Long.parseLong(t.substring(0, t.length() - 1)));
        }
        return Duration.ofSeconds(Long.parseLong(t));
    }
}
