package deeplake.spark.jvm.write;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.scheduler.SparkListenerTaskStart;
import org.apache.spark.scheduler.StageInfo;

/**
 * Counts the running tasks of the write job tagged {@code tag}, from Spark's listener events. Unlike
 * the status tracker, which stops counting a stage's tasks once the stage is aborted, the listener
 * bus reports every task's end, including a task still running when its job failed: the driver waits
 * for those before it looks for their files ({@link DeepLakeWriter#run}).
 */
final class RunningTasks extends SparkListener {
  private final String tag;
  private final Set<Integer> stages = ConcurrentHashMap.newKeySet();
  private final AtomicInteger running = new AtomicInteger();
  private volatile long lastEvent = System.currentTimeMillis();

  RunningTasks(String tag) {
    this.tag = tag;
  }

  @Override
  public void onJobStart(SparkListenerJobStart start) {
    String tags = start.properties() == null ? null : start.properties().getProperty("spark.job.tags");
    if (tags != null && java.util.Arrays.asList(tags.split(",")).contains(tag)) {
      for (StageInfo s : scala.jdk.javaapi.CollectionConverters.asJava(start.stageInfos())) {
        stages.add(s.stageId());
      }
    }
    lastEvent = System.currentTimeMillis();
  }

  @Override
  public void onTaskStart(SparkListenerTaskStart start) {
    if (stages.contains(start.stageId())) {
      running.incrementAndGet();
      lastEvent = System.currentTimeMillis();
    }
  }

  @Override
  public void onTaskEnd(SparkListenerTaskEnd end) {
    if (stages.contains(end.stageId())) {
      running.decrementAndGet();
      lastEvent = System.currentTimeMillis();
    }
  }

  /**
   * Waits (at most {@code timeoutMs}) until no task of the job runs and the listener has been quiet for
   * {@code quietMs} (its events arrive asynchronously). True when that happened in time.
   */
  boolean awaitNoneRunning(long timeoutMs, long quietMs) {
    long deadline = System.currentTimeMillis() + timeoutMs;
    while (System.currentTimeMillis() < deadline) {
      if (running.get() <= 0 && System.currentTimeMillis() - lastEvent >= quietMs) {
        return true;
      }
      try {
        Thread.sleep(20);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return false;
      }
    }
    return false;
  }
}
