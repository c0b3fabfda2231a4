// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title SpaceMembership: a local stand-in for a Towns space contract's membership surface.
/// @notice Exposes the same function signatures, selectors, custom errors and event topics as
/// the Towns space diamond (Membership, ERC721A, ERC721AQueryable, ERC5643 expiry, Multicall,
/// Pausable, Ownable facets) for everything the stress test and a River node call:
/// joinSpace(address), the price and supply getters, tokensOfOwner, expiresAt, multicall,
/// paused and owner. Charging follows the real join: nothing is due when the price is 0 or the
/// free allocation exceeds the supply, otherwise getMembershipPrice() (price including the
/// protocol fee) in native ETH; overpayment is refunded to the receiver.
/// Not supported: ERC-20 currencies, entitlements, referrals, renewals and token transfers.
/// The owner can set the price, fee, free allocation, duration, refused receivers and any
/// token's expiry so that tests can reach every outcome.
contract SpaceMembership {
    address private constant ETH_CURRENCY = 0xEeeeeEeeeEeEeeEeEeEeeEEEeeeeEeeeeeeeEEeE;

    error Membership__InsufficientPayment();
    error Membership__InvalidAddress();
    error Membership__MaxSupplyReached();
    error Membership__Banned();
    error Reentrancy();
    error Ownable__NotOwner(address account);
    error Membership__RefundFailed(address receiver);
    error ERC721A__OwnerQueryForNonexistentToken();

    event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);
    event MembershipPaid(address indexed currency, uint256 price, uint256 protocolFee);
    event SubscriptionUpdate(uint256 indexed tokenId, uint64 expiration);
    event MembershipTokenIssued(address indexed recipient, uint256 indexed tokenId);

    address private _owner;
    uint256 private _price;
    uint256 private _protocolFee;
    uint256 private _freeAllocation;
    uint256 private _limit;
    uint64 private _duration;
    uint256 private _nextTokenId;
    bool private _entered;

    mapping(uint256 => address) private _ownerOf;
    mapping(uint256 => uint64) private _expiresAt;
    mapping(address => uint256[]) private _tokensOf;
    mapping(address => bool) private _refused;

    modifier onlyOwner() {
        if (msg.sender != _owner) revert Ownable__NotOwner(msg.sender);
        _;
    }

    modifier nonReentrant() {
        if (_entered) revert Reentrancy();
        _entered = true;
        _;
        _entered = false;
    }

    constructor(uint256 price, uint256 freeAllocation, uint64 duration) {
        _owner = msg.sender;
        _price = price;
        _freeAllocation = freeAllocation;
        _duration = duration;
    }

    // --- join ---------------------------------------------------------------------------

    function joinSpace(address receiver) external payable nonReentrant {
        if (receiver == address(0)) revert Membership__InvalidAddress();
        if (_refused[receiver]) revert Membership__Banned();
        if (_limit != 0 && _nextTokenId >= _limit) revert Membership__MaxSupplyReached();

        uint256 due = (_price == 0 || _freeAllocation > _nextTokenId) ? 0 : _price;
        if (msg.value < due) revert Membership__InsufficientPayment();

        uint256 tokenId = _nextTokenId++;
        uint64 expiration = _duration == 0 ? 0 : uint64(block.timestamp) + _duration;
        _ownerOf[tokenId] = receiver;
        _expiresAt[tokenId] = expiration;
        _tokensOf[receiver].push(tokenId);

        if (due != 0) {
            uint256 fee = _protocolFee < due ? _protocolFee : due;
            emit MembershipPaid(ETH_CURRENCY, due - fee, fee);
        }
        emit Transfer(address(0), receiver, tokenId);
        emit SubscriptionUpdate(tokenId, expiration);
        emit MembershipTokenIssued(receiver, tokenId);

        uint256 excess = msg.value - due;
        if (excess != 0) {
            (bool sent, ) = receiver.call{value: excess}("");
            if (!sent) revert Membership__RefundFailed(receiver);
        }
    }

    // --- reads the SDK and the River node use -------------------------------------------

    function getMembershipPrice() external view returns (uint256) {
        return _price;
    }

    function getProtocolFee() external view returns (uint256) {
        return _protocolFee;
    }

    function getMembershipFreeAllocation() external view returns (uint256) {
        return _freeAllocation;
    }

    function getMembershipLimit() external view returns (uint256) {
        return _limit;
    }

    function getMembershipDuration() external view returns (uint64) {
        return _duration;
    }

    function getMembershipCurrency() external pure returns (address) {
        return ETH_CURRENCY;
    }

    function totalSupply() external view returns (uint256) {
        return _nextTokenId;
    }

    function balanceOf(address account) external view returns (uint256) {
        return _tokensOf[account].length;
    }

    function ownerOf(uint256 tokenId) external view returns (address) {
        address holder = _ownerOf[tokenId];
        if (holder == address(0)) revert ERC721A__OwnerQueryForNonexistentToken();
        return holder;
    }

    function tokensOfOwner(address account) external view returns (uint256[] memory) {
        return _tokensOf[account];
    }

    function expiresAt(uint256 tokenId) external view returns (uint256) {
        return _expiresAt[tokenId];
    }

    function paused() external pure returns (bool) {
        return false;
    }

    function owner() external view returns (address) {
        return _owner;
    }

    function multicall(bytes[] calldata data) external returns (bytes[] memory results) {
        results = new bytes[](data.length);
        for (uint256 i = 0; i < data.length; i++) {
            (bool ok, bytes memory result) = address(this).delegatecall(data[i]);
            if (!ok) {
                assembly {
                    revert(add(result, 32), mload(result))
                }
            }
            results[i] = result;
        }
    }

    // --- owner settings -----------------------------------------------------------------

    function setMembershipPrice(uint256 price) external onlyOwner {
        _price = price;
    }

    function setProtocolFee(uint256 fee) external onlyOwner {
        _protocolFee = fee;
    }

    function setMembershipFreeAllocation(uint256 freeAllocation) external onlyOwner {
        _freeAllocation = freeAllocation;
    }

    function setMembershipLimit(uint256 limit) external onlyOwner {
        _limit = limit;
    }

    function setMembershipDuration(uint64 duration) external onlyOwner {
        _duration = duration;
    }

    function setReceiverRefused(address receiver, bool refused) external onlyOwner {
        _refused[receiver] = refused;
    }

    function setExpiresAt(uint256 tokenId, uint64 expiration) external onlyOwner {
        if (_ownerOf[tokenId] == address(0)) revert ERC721A__OwnerQueryForNonexistentToken();
        _expiresAt[tokenId] = expiration;
        emit SubscriptionUpdate(tokenId, expiration);
    }

    function withdraw(address payable to) external onlyOwner {
        (bool sent, ) = to.call{value: address(this).balance}("");
        if (!sent) revert Membership__RefundFailed(to);
    }
}
