package org.nisprotocol.testkit;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.UUID;

/**
 * A dynamic AppCDS archive for a child JVM, kept in {@code java.io.tmpdir/nis-testkit-cds/}: it cuts a Kafka
 * broker's start from about 4.5 s to about 1.5 s on a small machine.
 *
 * <p>The first child JVM without an archive runs with {@code -XX:ArchiveClassesAtExit} to a file of its own, and
 * when it has ended normally (a graceful stop; a killed JVM dumps nothing) that file is moved into place atomically,
 * so JVMs running at the same time never see half an archive. Later child JVMs run with
 * {@code -XX:SharedArchiveFile}. The file name is a hash of the java, the purpose and the JVM options with the
 * class path, so a new JDK or a new Kafka gets a new archive. If the JVM rejects an archive it says so in the
 * process log and runs without it. The system property {@code nis.testkit.cds=false} turns this off.
 */
final class ClassDataArchive {

    private final Path archive;
    private Path pending;

    private ClassDataArchive(Path archive) {
        this.archive = archive;
    }

    /** The archive for a child JVM that runs with {@code jvmOptions} (the class path included) for {@code purpose}. */
    static ClassDataArchive of(String purpose, List<String> jvmOptions) {
        String key = String.join("\n", System.getProperty("java.home"), System.getProperty("java.vm.version"),
                purpose, String.join("\n", jvmOptions));
        Path dir = Path.of(System.getProperty("java.io.tmpdir"), "nis-testkit-cds");
        return new ClassDataArchive(dir.resolve(purpose + "-" + sha256(key).substring(0, 24) + ".jsa"));
    }

    static boolean enabled() {
        return !"false".equalsIgnoreCase(System.getProperty("nis.testkit.cds", "true"));
    }

    /** The options for the next launch: use the archive if there is one, else record one. */
    List<String> jvmOptions() {
        if (!enabled()) {
            return List.of();
        }
        if (Files.isRegularFile(archive)) {
            return List.of("-XX:SharedArchiveFile=" + archive);
        }
        try {
            Files.createDirectories(archive.getParent());
        } catch (IOException e) {
            return List.of();
        }
        discardPending();
        pending = archive.resolveSibling(archive.getFileName() + "." + UUID.randomUUID() + ".tmp");
        return List.of("-XX:ArchiveClassesAtExit=" + pending);
    }

    /** After the child JVM has ended normally: moves a recorded archive into place, if one was recorded. */
    void publish() {
        if (pending == null) {
            return;
        }
        try {
            if (Files.isRegularFile(pending) && Files.size(pending) > 0 && !Files.exists(archive)) {
                try {
                    Files.move(pending, archive, StandardCopyOption.ATOMIC_MOVE);
                } catch (AtomicMoveNotSupportedException e) {
                    Files.move(pending, archive);
                }
            }
        } catch (IOException ignored) {
            // another JVM published one first, or the disk is full: run without
        } finally {
            discardPending();
        }
    }

    /** Forgets a recorded archive that must not be used (the JVM was killed or failed). */
    void discardPending() {
        if (pending != null) {
            try {
                Files.deleteIfExists(pending);
            } catch (IOException ignored) {
                // a stray temporary file in the temporary directory
            }
            pending = null;
        }
    }

    private static String sha256(String text) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
                    .digest(text.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
