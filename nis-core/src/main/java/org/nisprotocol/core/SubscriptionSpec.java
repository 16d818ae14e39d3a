package org.nisprotocol.core;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.EnumSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * What a subscription receives: the topics and/or message types of one consumer group. With only
 * message types, the topics are those the types route to, and messages of other types on them are
 * skipped. With both, only messages of those types on those topics arrive.
 *
 * <pre>{@code
 * SubscriptionSpec.group("analysis_group").withTopics("nis-simulation")
 * SubscriptionSpec.group("health_monitor").withMessageTypes(MessageType.SYSTEM_HEALTH)
 * }</pre>
 *
 * @param group the consumer group
 * @param topics topics to read; may be empty when message types are given
 * @param messageTypes the types to deliver; empty means every type
 * @param startsAtEnd whether a group new to a topic starts at its end, with what is published
 *     once {@code subscribe} has returned, rather than with the oldest message the bus holds (see
 *     {@link #startingAtEnd()})
 * @param temporaryGroup whether the bus forgets the group, positions and all, once its last
 *     subscription has closed (see {@link #temporary()})
 */
public record SubscriptionSpec(
    String group, Set<String> topics, Set<MessageType> messageTypes, boolean startsAtEnd, boolean temporaryGroup) {

  public SubscriptionSpec {
    Objects.requireNonNull(group, "group");
    topics = Collections.unmodifiableSet(new LinkedHashSet<>(topics));
    messageTypes =
        messageTypes.isEmpty()
            ? Collections.unmodifiableSet(EnumSet.noneOf(MessageType.class))
            : Collections.unmodifiableSet(EnumSet.copyOf(messageTypes));
  }

  /** A spec for a lasting group (not {@link #temporary()}). */
  public SubscriptionSpec(String group, Set<String> topics, Set<MessageType> messageTypes, boolean startsAtEnd) {
    this(group, topics, messageTypes, startsAtEnd, false);
  }

  /** A spec that starts a new group with the oldest message the bus holds. */
  public SubscriptionSpec(String group, Set<String> topics, Set<MessageType> messageTypes) {
    this(group, topics, messageTypes, false, false);
  }

  /** A spec for the group with nothing chosen yet. */
  public static SubscriptionSpec group(String group) {
    return new SubscriptionSpec(group, Set.of(), Set.of());
  }

  /**
   * This spec for a group that, new to a topic, starts at the topic's end: it receives what is
   * published once {@code subscribe} has returned, nothing older. For one process's own group,
   * such as the replies to one instance's requests; a group that already has a position keeps it.
   * A broker-backed bus that cannot set the position when subscribing starts the group at the end
   * once it is assigned its partitions, and says so in its log.
   */
  public SubscriptionSpec startingAtEnd() {
    return new SubscriptionSpec(group, topics, messageTypes, true, temporaryGroup);
  }

  /**
   * This spec for a group that lasts only while it has a subscription open: when its last one
   * closes (or the bus does), the bus forgets the group and its positions; a broker-backed bus
   * deletes it on the broker, which otherwise keeps an idle group (and reports its growing lag)
   * until its offsets expire. For one process's own group, under a name of its own, such as the
   * replies to one instance's requests. A group the broker cannot delete (unreachable, members
   * elsewhere) is left for it to expire, which the log says. Whether a group is forgotten is
   * decided by the spec of its last subscription to close.
   */
  public SubscriptionSpec temporary() {
    return new SubscriptionSpec(group, topics, messageTypes, startsAtEnd, true);
  }

  /** This spec with the topics added. */
  public SubscriptionSpec withTopics(String... moreTopics) {
    Set<String> all = new LinkedHashSet<>(topics);
    all.addAll(Arrays.asList(moreTopics));
    return new SubscriptionSpec(group, all, messageTypes, startsAtEnd, temporaryGroup);
  }

  /** This spec with the message types added. */
  public SubscriptionSpec withMessageTypes(MessageType... moreTypes) {
    Set<MessageType> all = EnumSet.noneOf(MessageType.class);
    all.addAll(messageTypes);
    all.addAll(Arrays.asList(moreTypes));
    return new SubscriptionSpec(group, topics, all, startsAtEnd, temporaryGroup);
  }

  /** The topics read: the topics given, else those the message types route to. */
  public Set<String> effectiveTopics() {
    if (!topics.isEmpty()) {
      return topics;
    }
    Set<String> routed = new LinkedHashSet<>();
    messageTypes.forEach(type -> routed.add(type.topic()));
    return Collections.unmodifiableSet(routed);
  }

  /** Whether a message of this type is delivered to this subscription. */
  public boolean accepts(MessageType type) {
    return messageTypes.isEmpty() || messageTypes.contains(type);
  }

  /**
   * @throws ValidationException listing every problem: no topic and no type, bad names
   */
  public SubscriptionSpec validated() {
    List<String> problems = new ArrayList<>();
    if (group.isBlank()) {
      problems.add("group must not be blank");
    }
    if (topics.isEmpty() && messageTypes.isEmpty()) {
      problems.add("a subscription needs at least one topic or message type");
    }
    for (String topic : topics) {
      if (!StreamingTopics.isValidName(topic)) {
        problems.add(StreamingTopics.invalidNameProblem(topic));
      }
    }
    if (!problems.isEmpty()) {
      throw new ValidationException(problems);
    }
    return this;
  }
}
