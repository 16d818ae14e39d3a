package org.nisprotocol.redis;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/** A backing store in memory that records its calls and can be told to fail. Thread-safe. */
final class RecordingStore implements BackingStore {
  final Map<String, String> data = new ConcurrentHashMap<>();
  final List<String> calls = java.util.Collections.synchronizedList(new ArrayList<>());
  private final AtomicInteger failuresToGo = new AtomicInteger();
  private volatile Runnable beforeEachCall = () -> {};

  /** The next n calls throw. */
  RecordingStore failNext(int n) {
    failuresToGo.set(n);
    return this;
  }

  /** Runs before each call, e.g. to look at the cache at that moment. */
  RecordingStore beforeEachCall(Runnable hook) {
    this.beforeEachCall = hook;
    return this;
  }

  @Override
  public void write(String namespace, String key, String json) {
    call("write " + namespace + ":" + key + "=" + json);
    data.put(namespace + ":" + key, json);
  }

  @Override
  public void writeAll(String namespace, Map<String, String> entries) {
    call("writeAll " + namespace + " " + entries);
    entries.forEach((k, v) -> data.put(namespace + ":" + k, v));
  }

  @Override
  public void delete(String namespace, String key) {
    call("delete " + namespace + ":" + key);
    data.remove(namespace + ":" + key);
  }

  private void call(String description) {
    beforeEachCall.run();
    if (failuresToGo.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
      calls.add("FAILED " + description);
      throw new IllegalStateException("store unavailable");
    }
    calls.add(description);
  }
}
