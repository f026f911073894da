package org.btlm4j.checkpoint;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The central directory of a zip archive held in a {@link MemorySegment} (usually the memory-mapped
 * file), read without {@code java.util.zip} so that entries can be handed out as slices of the
 * mapping. Supports ZIP64 (end-of-central-directory record and locator, and the ZIP64 extra field
 * of each entry), as {@code torch.save} writes for checkpoints over 4 GB. Single-disk archives only.
 *
 * <p>Every offset and size is checked against the segment before it is used; a malformed archive
 * gives a {@link CheckpointException} naming the file and the problem.
 */
final class ZipDirectory {

    /** Compression method 0: the entry's bytes are stored as they are. */
    static final int STORED = 0;

    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private static final int LOCAL_HEADER_SIG = 0x04034b50;
    private static final int CENTRAL_HEADER_SIG = 0x02014b50;
    private static final int EOCD_SIG = 0x06054b50;
    private static final int ZIP64_EOCD_SIG = 0x06064b50;
    private static final int ZIP64_LOCATOR_SIG = 0x07064b50;
    private static final int EOCD_SIZE = 22;
    private static final int ZIP64_LOCATOR_SIZE = 20;
    private static final int ZIP64_EOCD_SIZE = 56;
    private static final int CENTRAL_HEADER_SIZE = 46;
    private static final int LOCAL_HEADER_SIZE = 30;
    private static final int MAX_COMMENT = 0xffff;
    /** More entries than any checkpoint has (BTLM-3B: about 300); bounds the memory a bad directory costs. */
    private static final long MAX_ENTRIES = 1 << 24;

    /**
     * One entry of the archive.
     *
     * @param method       compression method (0 stored, 8 deflated, ...)
     * @param flags        general purpose bit flags (bit 0: encrypted)
     * @param dataOffset   where the entry's (possibly compressed) bytes start in the file
     */
    record Entry(String name, int method, int flags, long compressedSize, long size, long localHeaderOffset,
                 long dataOffset) {

        boolean encrypted() {
            return (flags & 1) != 0;
        }
    }

    private final MemorySegment file;
    private final String fileName;
    private final Map<String, Entry> entries;

    private ZipDirectory(MemorySegment file, String fileName, Map<String, Entry> entries) {
        this.file = file;
        this.fileName = fileName;
        this.entries = entries;
    }

    /** Entries by name, in central directory order. */
    Map<String, Entry> entries() {
        return entries;
    }

    /** The entry of that name, or null. */
    Entry get(String name) {
        return entries.get(name);
    }

    /**
     * The bytes of a stored (uncompressed, unencrypted) entry, as a slice of the file.
     *
     * @param what what the entry holds, for the message if it is compressed
     */
    MemorySegment storedData(Entry e, String what) {
        if (e.encrypted()) {
            throw fail("entry " + e.name() + " (" + what + ") is encrypted");
        }
        if (e.method() != STORED) {
            throw fail("entry " + e.name() + " (" + what + ") is compressed (zip method " + e.method()
                    + "); only stored entries are supported, as torch.save writes them: re-save the checkpoint"
                    + " with torch.save instead of re-zipping it");
        }
        return file.asSlice(e.dataOffset(), e.size());
    }

    /**
     * Reads the central directory of {@code file}.
     *
     * @param fileName the file's name, for messages
     */
    static ZipDirectory read(MemorySegment file, String fileName) {
        return new Reader(file, fileName).read();
    }

    private CheckpointException fail(String message) {
        return new CheckpointException(fileName + ": " + message);
    }

    private static final class Reader {
        private final MemorySegment file;
        private final String fileName;
        private final long fileSize;

        Reader(MemorySegment file, String fileName) {
            this.file = file;
            this.fileName = fileName;
            this.fileSize = file.byteSize();
        }

        private CheckpointException fail(String message) {
            return new CheckpointException(fileName + ": " + message);
        }

        private int u16(long at) {
            return Short.toUnsignedInt(file.get(U16, at));
        }

        private long u32(long at) {
            return Integer.toUnsignedLong(file.get(U32, at));
        }

        /** A 64-bit size or offset, which must fit a (non-negative) long. */
        private long u64(long at, String what) {
            long v = file.get(U64, at);
            if (v < 0) {
                throw fail(what + " " + Long.toUnsignedString(v) + " is beyond any file size");
            }
            return v;
        }

        /** Checks that [offset, offset + length) lies inside the file. */
        private void checkRange(long offset, long length, String what) {
            if (offset < 0 || length < 0 || offset > fileSize || length > fileSize - offset) {
                throw fail(what + " (offset " + offset + ", " + length + " bytes) extends past the end of the file ("
                        + fileSize + " bytes): the file is truncated or corrupt");
            }
        }

        ZipDirectory read() {
            long eocd = findEndOfCentralDirectory();
            int disk = u16(eocd + 4);
            int cdDisk = u16(eocd + 6);
            long entriesOnDisk = u16(eocd + 8);
            long totalEntries = u16(eocd + 10);
            long cdSize = u32(eocd + 12);
            long cdOffset = u32(eocd + 16);
            long directoryEnd = eocd;

            long locator = eocd - ZIP64_LOCATOR_SIZE;
            if (locator >= 0 && file.get(U32, locator) == ZIP64_LOCATOR_SIG) {
                long zip64Eocd = u64(locator + 8, "ZIP64 end-of-central-directory offset");
                if (u32(locator + 4) != 0 || u32(locator + 16) > 1) {
                    throw fail("multi-disk zip archives are not supported");
                }
                checkRange(zip64Eocd, ZIP64_EOCD_SIZE, "ZIP64 end-of-central-directory record");
                if (zip64Eocd > locator - ZIP64_EOCD_SIZE) {
                    throw fail("ZIP64 end-of-central-directory record at " + zip64Eocd + " overlaps its locator");
                }
                if (file.get(U32, zip64Eocd) != ZIP64_EOCD_SIG) {
                    throw fail("no ZIP64 end-of-central-directory record at offset " + zip64Eocd
                            + " where the locator points: the file is corrupt");
                }
                disk = (int) Math.min(u32(zip64Eocd + 16), Integer.MAX_VALUE);
                cdDisk = (int) Math.min(u32(zip64Eocd + 20), Integer.MAX_VALUE);
                entriesOnDisk = u64(zip64Eocd + 24, "ZIP64 entry count");
                totalEntries = u64(zip64Eocd + 32, "ZIP64 entry count");
                cdSize = u64(zip64Eocd + 40, "ZIP64 central directory size");
                cdOffset = u64(zip64Eocd + 48, "ZIP64 central directory offset");
                directoryEnd = zip64Eocd;
            } else if (totalEntries == 0xffff || cdSize == 0xffffffffL || cdOffset == 0xffffffffL) {
                throw fail("zip end-of-central-directory record needs ZIP64 values but there is no ZIP64 locator:"
                        + " the file is truncated or corrupt");
            }
            if (disk != 0 || cdDisk != 0 || entriesOnDisk != totalEntries) {
                throw fail("multi-disk zip archives are not supported");
            }
            if (cdOffset > directoryEnd || cdSize > directoryEnd - cdOffset) {
                throw fail("zip central directory (offset " + cdOffset + ", " + cdSize
                        + " bytes) does not end before the end-of-central-directory record at " + directoryEnd
                        + ": the file is truncated or corrupt");
            }
            if (totalEntries > MAX_ENTRIES) {
                throw fail("zip archive claims " + totalEntries + " entries, more than the " + MAX_ENTRIES
                        + " supported");
            }
            if (totalEntries > cdSize / CENTRAL_HEADER_SIZE) {
                throw fail("zip central directory of " + cdSize + " bytes cannot hold the " + totalEntries
                        + " entries it claims: the file is corrupt");
            }
            return new ZipDirectory(file, fileName, readEntries(cdOffset, cdSize, (int) totalEntries));
        }

        /** Scans backwards from the end (at most 64 KiB of comment) for the end-of-central-directory record. */
        private long findEndOfCentralDirectory() {
            if (fileSize < EOCD_SIZE) {
                throw fail("file of " + fileSize + " bytes is too short to be a zip archive: it is truncated or"
                        + " not a PyTorch checkpoint");
            }
            long last = fileSize - EOCD_SIZE;
            long first = Math.max(0, last - MAX_COMMENT);
            for (long at = last; at >= first; at--) {
                if (file.get(U32, at) == EOCD_SIG && at + EOCD_SIZE + u16(at + 20) == fileSize) {
                    return at;
                }
            }
            throw fail("no zip end-of-central-directory record: the file is truncated or not a zip archive");
        }

        private Map<String, Entry> readEntries(long cdOffset, long cdSize, int count) {
            Map<String, Entry> result = new LinkedHashMap<>();
            long at = cdOffset;
            long end = cdOffset + cdSize;
            for (int i = 0; i < count; i++) {
                if (end - at < CENTRAL_HEADER_SIZE || file.get(U32, at) != CENTRAL_HEADER_SIG) {
                    throw fail("zip central directory entry " + i + " at offset " + at + " is malformed");
                }
                int flags = u16(at + 8);
                int method = u16(at + 10);
                long compressedSize = u32(at + 20);
                long size = u32(at + 24);
                int nameLength = u16(at + 28);
                int extraLength = u16(at + 30);
                int commentLength = u16(at + 32);
                int diskStart = u16(at + 34);
                long localOffset = u32(at + 42);
                long variable = (long) nameLength + extraLength + commentLength;
                if (end - at - CENTRAL_HEADER_SIZE < variable) {
                    throw fail("zip central directory entry " + i + " at offset " + at
                            + " runs past the end of the directory");
                }
                long nameAt = at + CENTRAL_HEADER_SIZE;
                String name = new String(file.asSlice(nameAt, nameLength).toArray(ValueLayout.JAVA_BYTE),
                        StandardCharsets.UTF_8);
                long extraAt = nameAt + nameLength;

                // ZIP64 extra field: the values whose 32-bit field is all ones, in this order
                boolean needSize = size == 0xffffffffL;
                boolean needCompressed = compressedSize == 0xffffffffL;
                boolean needOffset = localOffset == 0xffffffffL;
                boolean needDisk = diskStart == 0xffff;
                if (needSize || needCompressed || needOffset || needDisk) {
                    long z = findExtra(extraAt, extraLength, 0x0001, name);
                    if (z < 0) {
                        throw fail("zip entry " + name
                                + " has 32-bit fields set to 0xFFFFFFFF but no ZIP64 extra field");
                    }
                    int zLength = u16(z + 2);
                    long p = z + 4;
                    long zEnd = p + zLength;
                    if (needSize) {
                        size = zip64Value(p, zEnd, name, "size");
                        p += 8;
                    }
                    if (needCompressed) {
                        compressedSize = zip64Value(p, zEnd, name, "compressed size");
                        p += 8;
                    }
                    if (needOffset) {
                        localOffset = zip64Value(p, zEnd, name, "local header offset");
                        p += 8;
                    }
                    if (needDisk) {
                        if (zEnd - p < 4) {
                            throw fail("zip entry " + name + " has a short ZIP64 extra field");
                        }
                        diskStart = (int) Math.min(u32(p), Integer.MAX_VALUE);
                    }
                }
                if (diskStart != 0) {
                    throw fail("multi-disk zip archives are not supported (entry " + name + ")");
                }
                long dataOffset = localData(name, nameAt, nameLength, localOffset, compressedSize);
                if (method == STORED && compressedSize != size) {
                    throw fail("zip entry " + name + " is stored but its compressed size " + compressedSize
                            + " differs from its size " + size);
                }
                Entry entry = new Entry(name, method, flags, compressedSize, size, localOffset, dataOffset);
                if (result.putIfAbsent(name, entry) != null) {
                    throw fail("zip entry " + name + " appears twice");
                }
                at = nameAt + variable;
            }
            return Collections.unmodifiableMap(result);
        }

        /** Offset of the extra block with that header id inside [at, at+length), or -1. */
        private long findExtra(long at, int length, int headerId, String name) {
            long end = at + length;
            long p = at;
            while (end - p >= 4) {
                int id = u16(p);
                int blockLength = u16(p + 2);
                if (blockLength > end - p - 4) {
                    throw fail("zip entry " + name + " has a malformed extra field");
                }
                if (id == headerId) {
                    return p;
                }
                p += 4 + blockLength;
            }
            return -1;
        }

        private long zip64Value(long p, long end, String name, String what) {
            if (end - p < 8) {
                throw fail("zip entry " + name + " has a ZIP64 extra field without its " + what);
            }
            return u64(p, "zip entry " + name + " " + what);
        }

        /** Checks the local header of an entry and returns where its data starts. */
        private long localData(String name, long nameAt, int nameLength, long localOffset, long compressedSize) {
            checkRange(localOffset, LOCAL_HEADER_SIZE, "local header of zip entry " + name);
            if (file.get(U32, localOffset) != LOCAL_HEADER_SIG) {
                throw fail("zip entry " + name + " has no local header at offset " + localOffset
                        + ": the file is corrupt");
            }
            int localNameLength = u16(localOffset + 26);
            int localExtraLength = u16(localOffset + 28);
            checkRange(localOffset + LOCAL_HEADER_SIZE, (long) localNameLength + localExtraLength,
                    "local header of zip entry " + name);
            if (localNameLength != nameLength || MemorySegment.mismatch(file, nameAt, nameAt + nameLength, file,
                    localOffset + LOCAL_HEADER_SIZE, localOffset + LOCAL_HEADER_SIZE + nameLength) != -1) {
                throw fail("zip entry " + name + " has a different name in its local header: the file is corrupt");
            }
            long dataOffset = localOffset + LOCAL_HEADER_SIZE + localNameLength + localExtraLength;
            checkRange(dataOffset, compressedSize, "data of zip entry " + name);
            return dataOffset;
        }
    }
}
