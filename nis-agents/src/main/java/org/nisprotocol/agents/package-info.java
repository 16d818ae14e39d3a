/**
 * The agent layer's pure logic.
 *
 * <p>{@link org.nisprotocol.agents.SelfAuditEngine}: flags hype language, unsubstantiated claims and
 * hard-coded metric values in text and JSON message content, scores, corrects, and decides whether
 * an outgoing message passes, passes corrected, or is quarantined.
 *
 * <p>{@link org.nisprotocol.agents.ScenarioSimulatorService}: Monte Carlo scenario simulation with
 * Wilson intervals, results cached by a hash of the inputs and published as simulation_result.
 */
package org.nisprotocol.agents;
