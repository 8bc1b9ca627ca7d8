package rocketmqtest

// RequestCode is a remoting request code (RequestCode.java).
type RequestCode int32

// Request codes the broker answers or sends. Faults can be injected on any of
// them with Broker.Fail, Broker.SetLatency and friends.
const (
	CodeSendMessage                   RequestCode = 10
	CodePullMessage                   RequestCode = 11
	CodeQueryMessage                  RequestCode = 12
	CodeQueryConsumerOffset           RequestCode = 14
	CodeUpdateConsumerOffset          RequestCode = 15
	CodeCreateTopic                   RequestCode = 17
	CodeGetBrokerConfig               RequestCode = 26
	CodeSearchOffsetByTimestamp       RequestCode = 29
	CodeGetMaxOffset                  RequestCode = 30
	CodeGetMinOffset                  RequestCode = 31
	CodeViewMessageByID               RequestCode = 33
	CodeHeartbeat                     RequestCode = 34
	CodeUnregisterClient              RequestCode = 35
	CodeConsumerSendMsgBack           RequestCode = 36
	CodeEndTransaction                RequestCode = 37
	CodeGetConsumerListByGroup        RequestCode = 38
	CodeCheckTransactionState         RequestCode = 39
	CodeNotifyConsumerIDsChanged      RequestCode = 40
	CodeLockBatchMQ                   RequestCode = 41
	CodeUnlockBatchMQ                 RequestCode = 42
	CodeGetRouteInfoByTopic           RequestCode = 105
	CodeGetBrokerClusterInfo          RequestCode = 106
	CodeGetAllSubscriptionGroupConfig RequestCode = 201
	CodeGetAllTopicListFromNameServer RequestCode = 206
	CodeDeleteTopicInBroker           RequestCode = 215
	CodeDeleteTopicInNameServer       RequestCode = 216
	CodeGetConsumerRunningInfo        RequestCode = 307
	CodeConsumeMessageDirectly        RequestCode = 309
	CodeSendMessageV2                 RequestCode = 310
	CodeSendBatchMessage              RequestCode = 320
	CodeSendReplyMessage              RequestCode = 324
	CodePushReplyMessageToClient      RequestCode = 326
)

// ResponseCode is a remoting response code (ResponseCode.java,
// RemotingSysResponseCode.java).
type ResponseCode int32

// Response codes. The v2.1.2 producer retries a send that failed with
// RespSystemError, RespServiceNotAvailable, RespNoPermission or
// RespTopicNotExist, and fails at once on every other code (RespSystemBusy
// included).
const (
	RespSuccess                 ResponseCode = 0
	RespSystemError             ResponseCode = 1
	RespSystemBusy              ResponseCode = 2
	RespRequestCodeNotSupported ResponseCode = 3
	RespFlushDiskTimeout        ResponseCode = 10
	RespSlaveNotAvailable       ResponseCode = 11
	RespFlushSlaveTimeout       ResponseCode = 12
	RespMessageIllegal          ResponseCode = 13
	RespServiceNotAvailable     ResponseCode = 14
	RespNoPermission            ResponseCode = 16
	RespTopicNotExist           ResponseCode = 17
	RespPullNotFound            ResponseCode = 19
	RespPullRetryImmediately    ResponseCode = 20
	RespPullOffsetMoved         ResponseCode = 21
	RespQueryNotFound           ResponseCode = 22
	RespSubscriptionNotExist    ResponseCode = 24
	RespSubscriptionNotLatest   ResponseCode = 25
	RespSubscriptionGroupAbsent ResponseCode = 26
)
