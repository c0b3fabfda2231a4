// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title RiverRegistry: a local stand-in for the River registry's node list.
/// @notice Same `getAllNodes()` selector and `Node` layout as the River registry diamond's
/// NodeRegistry facet at the time of writing (status, url, nodeAddress, operator,
/// permanentIndex, cometBftPubKey), so node discovery can be exercised locally.
/// Not supported: operators, streams, and any other registry facet.
contract RiverRegistry {
    enum NodeStatus {
        NotInitialized,
        RemoteOnly,
        Operational,
        Failed,
        Departing,
        Deleted
    }

    struct Node {
        NodeStatus status;
        string url;
        address nodeAddress;
        address operator;
        uint32 permanentIndex;
        bytes32 cometBftPubKey;
    }

    error Ownable__NotOwner(address account);
    error NodeRegistry__NodeNotFound(address nodeAddress);

    event NodeAdded(address indexed nodeAddress, address indexed operator, string url, NodeStatus status);
    event NodeStatusUpdated(address indexed nodeAddress, NodeStatus status);

    address private _owner;
    Node[] private _nodes;

    modifier onlyOwner() {
        if (msg.sender != _owner) revert Ownable__NotOwner(msg.sender);
        _;
    }

    constructor() {
        _owner = msg.sender;
    }

    function registerNode(address nodeAddress, string calldata url, NodeStatus status) external onlyOwner {
        _nodes.push(Node(status, url, nodeAddress, msg.sender, uint32(_nodes.length + 1), bytes32(0)));
        emit NodeAdded(nodeAddress, msg.sender, url, status);
    }

    function updateNodeStatus(address nodeAddress, NodeStatus status) external onlyOwner {
        for (uint256 i = 0; i < _nodes.length; i++) {
            if (_nodes[i].nodeAddress == nodeAddress) {
                _nodes[i].status = status;
                emit NodeStatusUpdated(nodeAddress, status);
                return;
            }
        }
        revert NodeRegistry__NodeNotFound(nodeAddress);
    }

    function getAllNodes() external view returns (Node[] memory) {
        return _nodes;
    }

    function getNodeCount() external view returns (uint256) {
        return _nodes.length;
    }
}
