package org.nisprotocol.testkit;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * A TCP proxy on a free loopback port, for network faults between clients and a server.
 *
 * <p>{@link #stall()} stops forwarding in both directions: what each side sends is held, and new connections are
 * accepted and connected to the server but their bytes are held too. {@link #resume()} forwards what was held and
 * goes on. A connection that either side closes while stalled is closed on the other side at once, and what it held
 * is dropped. Held bytes are kept in memory without a bound. That is a network path that stalls and comes back, on
 * which a connection given up during the stall takes its unsent bytes with it; unlike a paused server process,
 * whose kernel keeps such bytes and hands them to the server when it goes on.
 *
 * <pre>{@code
 * try (TcpProxy proxy = TcpProxy.start(() -> server.address())) {
 *     ... clients connect to proxy.address() ...
 *     proxy.stall();
 *     ...
 *     proxy.resume();
 * }
 * }</pre>
 *
 * <p>The target ({@code "host:port"}) is asked for at each new connection, so it may be known only after the proxy
 * started (a Kafka broker that advertises the proxy's address). Thread-safe.
 */
public final class TcpProxy implements AutoCloseable {

    private final Supplier<String> target;
    private final ServerSocket listener;
    private final Set<Link> links = ConcurrentHashMap.newKeySet();
    private volatile boolean stalled;
    private volatile boolean closed;

    private TcpProxy(Supplier<String> target, ServerSocket listener) {
        this.target = target;
        this.listener = listener;
    }

    /** A proxy listening on a free port of 127.0.0.1, forwarding each connection to {@code target} ("host:port"). */
    public static TcpProxy start(Supplier<String> target) {
        Objects.requireNonNull(target, "target");
        try {
            TcpProxy proxy = new TcpProxy(target, new ServerSocket(0, 50, InetAddress.getLoopbackAddress()));
            Thread.ofVirtual().name("tcp-proxy-accept-" + proxy.port()).start(proxy::acceptAll);
            return proxy;
        } catch (IOException e) {
            throw new UncheckedIOException("the TCP proxy cannot listen on 127.0.0.1", e);
        }
    }

    /** The port clients connect to. */
    public int port() {
        return listener.getLocalPort();
    }

    /** {@code "127.0.0.1:PORT"}, the address clients connect to. */
    public String address() {
        return "127.0.0.1:" + port();
    }

    /**
     * Stops forwarding; both sides' bytes are held until {@link #resume()} (dropped if their connection closes).
     * Returns once no byte read before it is still being forwarded.
     */
    public void stall() {
        stalled = true;
        for (Link link : links) {
            link.toServer.awaitForwarding();
            link.toClient.awaitForwarding();
        }
    }

    /** Forwards what was held, then everything as it comes. */
    public void resume() {
        stalled = false;
        for (Link link : links) {
            link.toServer.flushHeld();
            link.toClient.flushHeld();
        }
    }

    /** Whether the proxy is stalled. */
    public boolean stalled() {
        return stalled;
    }

    /** Stops listening and closes every connection. */
    @Override
    public void close() {
        closed = true;
        try {
            listener.close();
        } catch (IOException ignored) {
            // closing anyway
        }
        links.forEach(Link::close);
    }

    private void acceptAll() {
        while (!closed) {
            Socket client;
            try {
                client = listener.accept();
            } catch (IOException e) {
                return; // closed
            }
            Socket server = new Socket();
            Link link;
            try {
                String address = target.get();
                int colon = address.lastIndexOf(':');
                server.connect(new InetSocketAddress(address.substring(0, colon), Integer.parseInt(address.substring(colon + 1))), 5_000);
                client.setTcpNoDelay(true);
                server.setTcpNoDelay(true);
                link = new Link(client, server);
            } catch (IOException | RuntimeException e) {
                closeQuietly(client);
                closeQuietly(server);
                continue;
            }
            links.add(link);
            if (closed) {
                link.close();
                return;
            }
            link.start();
        }
    }

    /** One client connection and its connection to the server. */
    private final class Link {
        final Socket client;
        final Socket server;
        final Direction toServer;
        final Direction toClient;

        Link(Socket client, Socket server) throws IOException {
            this.client = client;
            this.server = server;
            this.toServer = new Direction(client.getInputStream(), server.getOutputStream());
            this.toClient = new Direction(server.getInputStream(), client.getOutputStream());
        }

        void start() {
            Thread.ofVirtual().name("tcp-proxy-to-server").start(() -> pump(toServer));
            Thread.ofVirtual().name("tcp-proxy-to-client").start(() -> pump(toClient));
        }

        /** Copies one direction until either side closes; then both are closed and what was held is dropped. */
        private void pump(Direction direction) {
            byte[] buffer = new byte[64 * 1024];
            try {
                int read;
                while ((read = direction.from.read(buffer)) >= 0) {
                    direction.forwardOrHold(buffer, read);
                }
            } catch (IOException e) {
                // one side closed or reset: the connection ends
            } finally {
                close();
            }
        }

        void close() {
            links.remove(this);
            toServer.dropHeld();
            toClient.dropHeld();
            closeQuietly(client);
            closeQuietly(server);
        }
    }

    /** One direction of a link: forwards, or holds while the proxy is stalled. */
    private final class Direction {
        final InputStream from;
        final OutputStream to;
        private final ByteArrayOutputStream held = new ByteArrayOutputStream(); // guarded by this

        Direction(InputStream from, OutputStream to) {
            this.from = from;
            this.to = to;
        }

        synchronized void forwardOrHold(byte[] bytes, int length) throws IOException {
            if (stalled) {
                held.write(bytes, 0, length);
                return;
            }
            writeHeld();
            to.write(bytes, 0, length);
            to.flush();
        }

        synchronized void flushHeld() {
            try {
                writeHeld();
                to.flush();
            } catch (IOException e) {
                // the connection is ending; its pump closes it
            }
        }

        /** Returns once a forward under way (which began before a stall) has ended. */
        synchronized void awaitForwarding() {
            // the lock is the wait
        }

        synchronized void dropHeld() {
            held.reset();
        }

        private void writeHeld() throws IOException {
            if (held.size() > 0) {
                held.writeTo(to);
                held.reset();
            }
        }
    }

    private static void closeQuietly(Socket socket) {
        try {
            socket.close();
        } catch (IOException ignored) {
            // closing anyway
        }
    }
}
