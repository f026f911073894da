package org.btlm4j.checkpoint;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** A whole file mapped read-only into memory; closing it unmaps the file. Files over 2 GB are fine. */
public final class MappedFile implements AutoCloseable {
    private final Arena arena;
    private final MemorySegment segment;

    private MappedFile(Arena arena, MemorySegment segment) {
        this.arena = arena;
        this.segment = segment;
    }

    /** Maps {@code path}, or throws a {@link CheckpointException} saying why it cannot. */
    public static MappedFile map(Path path) {
        if (Files.isDirectory(path)) {
            throw new CheckpointException(path + ": is a directory, expected a file");
        }
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            MemorySegment seg = size == 0 ? MemorySegment.NULL.reinterpret(0)
                    : ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            return new MappedFile(arena, seg);
        } catch (NoSuchFileException e) {
            arena.close();
            throw new CheckpointException(path + ": file not found");
        } catch (AccessDeniedException e) {
            arena.close();
            throw new CheckpointException(path + ": permission denied");
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw new CheckpointException(path + ": cannot map file (" + e.getMessage() + ")", e);
        }
    }

    public MemorySegment segment() {
        return segment;
    }

    Arena arena() {
        return arena;
    }

    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }
}
