import Foundation
@testable import FinchIO

/// Pickle opcode streams written by hand, for files no PyTorch would write.
struct PickleBytes {
    var bytes: [UInt8] = [0x80, 0x02]

    mutating func op(_ codes: UInt8...) { bytes += codes }
    mutating func int(_ v: Int) {
        // LONG1 with 8 bytes carries any Int, negative ones included.
        bytes += [0x8A, 8]
        withUnsafeBytes(of: Int64(v).littleEndian) { bytes += $0 }
    }
    mutating func string(_ s: String) {
        let u = Array(s.utf8)
        bytes.append(0x58)
        withUnsafeBytes(of: UInt32(u.count).littleEndian) { bytes += $0 }
        bytes += u
    }
    mutating func global(_ module: String, _ name: String) { bytes += [0x63] + Array("\(module)\n\(name)\n".utf8) }
    mutating func mark() { op(0x28) }
    mutating func tuple() { op(0x74) }
    mutating func emptyDict() { op(0x7D) }
    mutating func setItem() { op(0x73) }
    mutating func put(_ k: Int) { bytes += [0x72]; withUnsafeBytes(of: UInt32(k).littleEndian) { bytes += $0 } }
    mutating func get(_ k: Int) { bytes += [0x6A]; withUnsafeBytes(of: UInt32(k).littleEndian) { bytes += $0 } }
    mutating func stop() { op(0x2E) }

    /// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`.
    mutating func tensor(storage key: String, type: String = "FloatStorage", elements: Int,
                         offset: Int, size: [Int], stride: [Int]) {
        global("torch._utils", "_rebuild_tensor_v2")
        mark()
        mark(); string("storage"); global("torch", type); string(key); string("cpu"); int(elements); tuple()
        op(0x51)                                   // BINPERSID
        int(offset)
        mark(); size.forEach { int($0) }; tuple()
        mark(); stride.forEach { int($0) }; tuple()
        op(0x89)                                   // NEWFALSE
        global("collections", "OrderedDict"); op(0x29, 0x52)   // EMPTY_TUPLE, REDUCE
        tuple()
        op(0x52)                                   // REDUCE
    }
}

/// One described view for `stateDictPickle`.
struct CraftedTensor {
    var name: String
    var storage = "0"
    var type = "FloatStorage"
    var elements: Int
    var offset = 0
    var size: [Int]
    var stride: [Int]
}

func stateDictPickle(_ tensors: [CraftedTensor]) -> [UInt8] {
    var p = PickleBytes()
    p.emptyDict()
    for t in tensors {
        p.string(t.name)
        p.tensor(storage: t.storage, type: t.type, elements: t.elements, offset: t.offset, size: t.size, stride: t.stride)
        p.setItem()
    }
    p.stop()
    return p.bytes
}

/// A ZIP of stored members, laid out as torch.save does (local headers and data, then the
/// central directory, then the end record), with every record's offset kept for patching.
struct CraftedZip {
    var bytes: [UInt8] = []
    var localHeaders: [Int] = []
    var centralEntries: [Int] = []
    var directoryOffset = 0
    var endRecord = 0

    init(_ members: [(name: String, data: [UInt8])]) {
        func u16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
        func u32(_ v: Int) -> [UInt8] { u16(v & 0xFFFF) + u16(v >> 16 & 0xFFFF) }
        for m in members {
            localHeaders.append(bytes.count)
            let name = Array(m.name.utf8)
            bytes += u32(0x0403_4B50) + u16(20) + u16(0) + u16(0) + u16(0) + u16(0) + u32(0)
            bytes += u32(m.data.count) + u32(m.data.count) + u16(name.count) + u16(0) + name + m.data
        }
        directoryOffset = bytes.count
        for (m, local) in zip(members, localHeaders) {
            centralEntries.append(bytes.count)
            let name = Array(m.name.utf8)
            bytes += u32(0x0201_4B50) + u16(20) + u16(20) + u16(0) + u16(0) + u16(0) + u16(0) + u32(0)
            bytes += u32(m.data.count) + u32(m.data.count) + u16(name.count) + u16(0) + u16(0)
            bytes += u16(0) + u16(0) + u32(0) + u32(local) + name
        }
        endRecord = bytes.count
        bytes += u32(0x0605_4B50) + u16(0) + u16(0) + u16(members.count) + u16(members.count)
        bytes += u32(endRecord - directoryOffset) + u32(directoryOffset) + u16(0)
    }

    mutating func set16(_ offset: Int, _ v: Int) { bytes[offset] = UInt8(v & 0xFF); bytes[offset + 1] = UInt8(v >> 8 & 0xFF) }
    mutating func set32(_ offset: Int, _ v: Int) { set16(offset, v & 0xFFFF); set16(offset + 2, v >> 16 & 0xFFFF) }
}

/// A `.pth` in torch.save's layout: `archive/data.pkl`, `archive/byteorder`, `archive/data/<key>`.
func torchZip(pickle: [UInt8], storages: [String: [UInt8]]) -> CraftedZip {
    var members: [(name: String, data: [UInt8])] = [("archive/data.pkl", pickle), ("archive/byteorder", Array("little".utf8))]
    for key in storages.keys.sorted() { members.append(("archive/data/\(key)", storages[key]!)) }
    return CraftedZip(members)
}

func floatBytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
}
