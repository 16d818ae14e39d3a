/**
 * The NIS core: the agent message record and its JSON wire format, the two ports (message bus
 * and cache), their configuration and the error hierarchy. Backends live in their own modules.
 */
package org.nisprotocol.core;
