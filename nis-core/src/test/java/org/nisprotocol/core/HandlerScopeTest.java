package org.nisprotocol.core;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class HandlerScopeTest {
  private final Object busA = new Object();
  private final Object busB = new Object();

  @Test
  void aScopeMarksItsThreadForItsOwnerOnlyUntilClosed() {
    assertThat(HandlerScope.isWithin(busA)).isFalse();
    HandlerScope scope = HandlerScope.enter(busA);

    assertThat(HandlerScope.isWithin(busA)).isTrue();
    assertThat(HandlerScope.isWithin(busB)).as("another bus's").isFalse();
    scope.close();
    assertThat(HandlerScope.isWithin(busA)).isFalse();
  }

  @Test
  void closingAnInnerScopeGivesBackTheOuterOne() {
    HandlerScope outer = HandlerScope.enter(busA);
    HandlerScope inner = HandlerScope.enter(busB);
    assertThat(HandlerScope.isWithin(busB)).isTrue();

    inner.close();

    assertThat(HandlerScope.isWithin(busA)).isTrue();
    assertThat(HandlerScope.isWithin(busB)).isFalse();
    outer.close();
    assertThat(HandlerScope.isWithin(busA)).isFalse();
  }

  @Test
  void aThreadStartedInAScopeIsMarkedWhileTheScopeLasts() throws Exception {
    CountDownLatch checkAgain = new CountDownLatch(1);
    CompletableFuture<Boolean> during = new CompletableFuture<>();
    CompletableFuture<Boolean> after = new CompletableFuture<>();
    HandlerScope scope = HandlerScope.enter(busA);
    Thread started = Thread.ofPlatform().start(() -> {
      during.complete(HandlerScope.isWithin(busA));
      try {
        checkAgain.await();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      after.complete(HandlerScope.isWithin(busA));
    });

    assertThat(during.get(10, TimeUnit.SECONDS)).isTrue();
    scope.close();
    checkAgain.countDown();
    assertThat(after.get(10, TimeUnit.SECONDS)).as("the call it worked for has ended").isFalse();
    started.join();
  }
}
