package deeplake.spark.jvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import io.delta.kernel.Operation;
import io.delta.kernel.Table;
import io.delta.kernel.engine.Engine;
import io.delta.kernel.types.LongType;
import io.delta.kernel.types.StructType;
import io.delta.kernel.utils.CloseableIterable;
import org.apache.hadoop.conf.Configuration;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.LogEvent;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.appender.AbstractAppender;
import org.apache.logging.log4j.core.config.LoggerConfig;
import org.apache.logging.log4j.core.config.Property;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Kernel's "Cannot find a complete checkpoint" WARN (every read of a table younger than its first
 * checkpoint) is dropped by {@link TableLog}; the logger's other warnings still show, and a logger the
 * user configured is left alone. Real log4j2 core, real Kernel reads of a real table.
 */
class KernelLogNoiseTest {
  @TempDir
  Path dir;
  private final List<String> seen = new ArrayList<>();
  private final Configuration conf = new Configuration();
  private LoggerContext context;
  private Level rootLevel;
  private AbstractAppender appender;
  private String root;

  @BeforeEach
  void setUp() {
    context = (LoggerContext) LogManager.getContext(false);
    org.apache.logging.log4j.core.config.Configuration config = context.getConfiguration();
    appender = new AbstractAppender("kernel-noise-test", null, null, true, Property.EMPTY_ARRAY) {
      @Override
      public void append(LogEvent event) {
        if (event.getLoggerName().equals(TableLog.SNAPSHOT_LOGGER)) {
          seen.add(event.getMessage().getFormattedMessage());
        }
      }
    };
    appender.start();
    rootLevel = config.getRootLogger().getLevel();
    config.getRootLogger().addAppender(appender, Level.ALL, null);
    config.getRootLogger().setLevel(Level.WARN);  // a WARN reaches the appenders unless filtered
    context.updateLoggers();
    root = dir.resolve("ds").toString();
    Engine engine = TableLog.engine(conf);
    Table.forPath(engine, root).createTransactionBuilder(engine, "deeplake-test", Operation.CREATE_TABLE)
        .withSchema(engine, new StructType().add("id", LongType.LONG)).build(engine)
        .commit(engine, CloseableIterable.emptyIterable());
  }

  @AfterEach
  void tearDown() {
    org.apache.logging.log4j.core.config.Configuration config = context.getConfiguration();
    config.getRootLogger().removeAppender(appender.getName());
    config.getRootLogger().setLevel(rootLevel);
    config.removeLogger(TableLog.SNAPSHOT_LOGGER);
    context.updateLoggers();
    TableLog.quietNoCheckpointWarning();  // as it was
    appender.stop();
  }

  private boolean warned() {
    return seen.stream().anyMatch(m -> m.contains(TableLog.NO_CHECKPOINT_WARNING));
  }

  @Test
  void noCheckpointWarningIsDroppedOtherWarningsStay() throws Exception {
    assertEquals(0, TableLog.snapshot(root, conf, null, null).version);
    assertFalse(warned(), "the no-checkpoint warning was printed: " + seen);
    LogManager.getLogger(TableLog.SNAPSHOT_LOGGER).warn("a real problem");
    assertTrue(seen.contains("a real problem"), "another warning of the logger was dropped: " + seen);
    // no logger setting of its own: the logger's level and Spark's shell threshold still govern it
    assertFalse(context.getConfiguration().getLoggers().containsKey(TableLog.SNAPSHOT_LOGGER));
    // without the filter Kernel does print it on this read (so the check above is not vacuous)
    TableLog.NoCheckpointFilter.uninstall();
    Engine plain = io.delta.kernel.defaults.engine.DefaultEngine.create(conf);
    Table.forPath(plain, root).getLatestSnapshot(plain);
    assertTrue(warned(), "Kernel no longer prints the warning: " + seen);
  }

  @Test
  void aLoggerTheUserConfiguredIsLeftAlone() throws Exception {
    org.apache.logging.log4j.core.config.Configuration config = context.getConfiguration();
    TableLog.NoCheckpointFilter.uninstall();
    LoggerConfig mine = LoggerConfig.newBuilder().withLoggerName(TableLog.SNAPSHOT_LOGGER).withLevel(Level.WARN)
        .withAdditivity(true).withConfig(config).build();
    config.addLogger(TableLog.SNAPSHOT_LOGGER, mine);
    context.updateLoggers();
    assertFalse(TableLog.quietNoCheckpointWarning());
    assertSame(mine, config.getLoggers().get(TableLog.SNAPSHOT_LOGGER));
    TableLog.snapshot(root, conf, null, null);
    assertTrue(warned(), "the user's own logger setting was overridden: " + seen);
    config.removeLogger(TableLog.SNAPSHOT_LOGGER);
    context.updateLoggers();
  }
}
