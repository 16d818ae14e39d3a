package org.nisprotocol.testkit;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class TcpProxyTest {
    private ServerSocket server;
    private final BlockingQueue<String> received = new LinkedBlockingQueue<>();
    private TcpProxy proxy;

    /** A server that records each line it reads and answers it with "ok:" and the line. */
    @BeforeEach
    void startServer() throws IOException {
        server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        Thread.ofVirtual().start(() -> {
            while (!server.isClosed()) {
                try {
                    Socket socket = server.accept();
                    Thread.ofVirtual().start(() -> serve(socket));
                } catch (IOException e) {
                    return;
                }
            }
        });
        proxy = TcpProxy.start(() -> "127.0.0.1:" + server.getLocalPort());
    }

    private void serve(Socket socket) {
        try (socket) {
            InputStream in = socket.getInputStream();
            StringBuilder line = new StringBuilder();
            int c;
            while ((c = in.read()) >= 0) {
                if (c == '\n') {
                    received.add(line.toString());
                    socket.getOutputStream().write(("ok:" + line + "\n").getBytes(StandardCharsets.UTF_8));
                    line.setLength(0);
                } else {
                    line.append((char) c);
                }
            }
        } catch (IOException ignored) {
            // the client went away
        }
    }

    @AfterEach
    void stop() throws IOException {
        proxy.close();
        server.close();
    }

    @Test
    void forwardsBothWays() throws IOException {
        try (Socket client = connect()) {
            send(client, "a");
            assertThat(readLine(client)).isEqualTo("ok:a");
        }
    }

    @Test
    void holdsWhileStalledAndForwardsOnResume() throws Exception {
        try (Socket client = connect()) {
            proxy.stall();
            send(client, "held");
            assertThat(received.poll(300, TimeUnit.MILLISECONDS)).as("nothing reaches the server while stalled").isNull();
            proxy.resume();
            assertThat(received.poll(5, TimeUnit.SECONDS)).isEqualTo("held");
            assertThat(readLine(client)).isEqualTo("ok:held");
        }
    }

    @Test
    void whatAConnectionClosedWhileStalledHeldIsDropped() throws Exception {
        proxy.stall();
        try (Socket abandoned = connect()) {
            send(abandoned, "lost");
            Thread.sleep(100); // the proxy has read it (and holds it)
        }
        try (Socket next = connect()) {
            send(next, "kept");
            Thread.sleep(100); // the proxy has seen the first one close
            proxy.resume();
            assertThat(readLine(next)).isEqualTo("ok:kept");
        }
        assertThat(received.poll(5, TimeUnit.SECONDS)).isEqualTo("kept");
        assertThat(received.poll(300, TimeUnit.MILLISECONDS)).as("the abandoned connection's line").isNull();
    }

    private Socket connect() throws IOException {
        Socket socket = new Socket(InetAddress.getLoopbackAddress(), proxy.port());
        socket.setSoTimeout(5_000);
        return socket;
    }

    private static void send(Socket socket, String line) throws IOException {
        socket.getOutputStream().write((line + "\n").getBytes(StandardCharsets.UTF_8));
        socket.getOutputStream().flush();
    }

    private static String readLine(Socket socket) throws IOException {
        StringBuilder line = new StringBuilder();
        try {
            int c;
            while ((c = socket.getInputStream().read()) >= 0 && c != '\n') {
                line.append((char) c);
            }
        } catch (SocketTimeoutException e) {
            return "(nothing in 5 s)";
        }
        return line.toString();
    }
}
