/// The superblock of an in-memory HDF5 file image, made valid for writing to disk.
///
/// libhdf5 1.10.8 (Debian 12) hands out file images (`H5Fget_file_image`) of a format-1.10
/// file with the superblock's "open for writing" flags cleared but its checksum still computed
/// over the flags as they were, so every reader refuses the image ("incorrect metadata
/// checksum"). The checksum is recomputed here over the bytes as they are; with a libhdf5
/// that gets it right this rewrites the same value.
enum HDF5FileImage {
    static let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Rewrites the checksum of a version 2 or 3 superblock with 8-byte addresses at the start
    /// of `image` (what Finch's file-access settings produce); false when the image does not
    /// start with such a superblock.
    static func repairSuperblockChecksum(_ image: UnsafeMutableRawBufferPointer) -> Bool {
        // signature, version, sizes of offsets and lengths, flags, then four addresses.
        let covered = 8 + 4 + 4 * 8
        guard image.count >= covered + 4, Array(image[0..<8]) == signature,
              image[8] == 2 || image[8] == 3, image[9] == 8, image[10] == 8 else { return false }
        let sum = lookup3(UnsafeRawBufferPointer(rebasing: image[0..<covered]))
        for i in 0..<4 { image[covered + i] = UInt8(truncatingIfNeeded: sum >> (8 * UInt32(i))) }
        return true
    }

    /// Bob Jenkins' lookup3 hash (`hashlittle`, initial value 0), HDF5's metadata checksum.
    static func lookup3(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        func rot(_ x: UInt32, _ k: UInt32) -> UInt32 { (x << k) | (x >> (32 - k)) }
        var a = 0xdead_beef &+ UInt32(truncatingIfNeeded: bytes.count)
        var b = a, c = a
        func word(_ at: Int, _ n: Int) -> UInt32 {
            var w: UInt32 = 0
            for i in 0..<n { w |= UInt32(bytes[at + i]) << (8 * UInt32(i)) }
            return w
        }
        var at = 0, left = bytes.count
        while left > 12 {
            a &+= word(at, 4); b &+= word(at + 4, 4); c &+= word(at + 8, 4)
            a &-= c; a ^= rot(c, 4); c &+= b
            b &-= a; b ^= rot(a, 6); a &+= c
            c &-= b; c ^= rot(b, 8); b &+= a
            a &-= c; a ^= rot(c, 16); c &+= b
            b &-= a; b ^= rot(a, 19); a &+= c
            c &-= b; c ^= rot(b, 4); b &+= a
            at += 12; left -= 12
        }
        if left == 0 { return c }
        a &+= word(at, min(left, 4))
        if left > 4 { b &+= word(at + 4, min(left - 4, 4)) }
        if left > 8 { c &+= word(at + 8, left - 8) }
        c ^= b; c &-= rot(b, 14)
        a ^= c; a &-= rot(c, 11)
        b ^= a; b &-= rot(a, 25)
        c ^= b; c &-= rot(b, 16)
        a ^= c; a &-= rot(c, 4)
        b ^= a; b &-= rot(a, 14)
        c ^= b; c &-= rot(b, 24)
        return c
    }
}
