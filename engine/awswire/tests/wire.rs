//! Validation, serialization and parsing on small models shaped like the real services
//! orgop calls (EC2, Organizations, S3): the behaviour the network layer and runbook
//! authors rely on, beyond the protocol compliance cases.

use orgop_awswire::{
    HttpResponse, ParamErrorKind, Protocol, ServiceModel, parse, serialize, validate,
};
use serde_json::{Value, json};

fn ec2() -> ServiceModel {
    let doc = json!({
        "version": "2.0",
        "metadata": {"apiVersion": "2016-11-15", "endpointPrefix": "ec2", "protocol": "ec2",
                     "protocols": ["ec2"], "serviceId": "EC2", "signatureVersion": "v4"},
        "operations": {
            "DescribeVolumes": {"name": "DescribeVolumes", "http": {"method": "POST", "requestUri": "/"},
                "input": {"shape": "DescribeVolumesRequest"}, "output": {"shape": "DescribeVolumesResult"}},
            "DescribeVpcs": {"name": "DescribeVpcs", "http": {"method": "POST", "requestUri": "/"},
                "input": {"shape": "DescribeVolumesRequest"}},
            "CreateVolume": {"name": "CreateVolume", "http": {"method": "POST", "requestUri": "/"},
                "input": {"shape": "CreateVolumeRequest"}, "output": {"shape": "Volume"}},
            "DeleteVolume": {"name": "DeleteVolume", "http": {"method": "POST", "requestUri": "/"},
                "input": {"shape": "DeleteVolumeRequest"}}
        },
        "shapes": {
            "DescribeVolumesRequest": {"type": "structure", "members": {
                "Filters": {"shape": "FilterList", "locationName": "Filter"},
                "VolumeIds": {"shape": "VolumeIdStringList", "locationName": "VolumeId"},
                "DryRun": {"shape": "Boolean", "locationName": "dryRun"},
                "MaxResults": {"shape": "MaxResults", "locationName": "maxResults"},
                "NextToken": {"shape": "String", "locationName": "nextToken"}}},
            "MaxResults": {"type": "integer", "min": 5, "max": 1000},
            "FilterList": {"type": "list", "member": {"shape": "Filter", "locationName": "Filter"}},
            "Filter": {"type": "structure", "required": ["Name"], "members": {
                "Name": {"shape": "String"},
                "Values": {"shape": "ValueStringList", "locationName": "Value"}}},
            "ValueStringList": {"type": "list", "member": {"shape": "String", "locationName": "item"}},
            "VolumeIdStringList": {"type": "list", "member": {"shape": "String", "locationName": "VolumeId"}},
            "DescribeVolumesResult": {"type": "structure", "members": {
                "Volumes": {"shape": "VolumeList", "locationName": "volumeSet"},
                "NextToken": {"shape": "String", "locationName": "nextToken"}}},
            "VolumeList": {"type": "list", "member": {"shape": "Volume", "locationName": "item"}},
            "Volume": {"type": "structure", "members": {
                "VolumeId": {"shape": "String", "locationName": "volumeId"},
                "Size": {"shape": "Integer", "locationName": "size"},
                "State": {"shape": "VolumeState", "locationName": "status"},
                "CreateTime": {"shape": "DateTime", "locationName": "createTime"},
                "Encrypted": {"shape": "Boolean", "locationName": "encrypted"},
                "Tags": {"shape": "TagList", "locationName": "tagSet"}}},
            "TagList": {"type": "list", "member": {"shape": "Tag", "locationName": "item"}},
            "Tag": {"type": "structure", "members": {
                "Key": {"shape": "String", "locationName": "key"},
                "Value": {"shape": "String", "locationName": "value"}}},
            "CreateVolumeRequest": {"type": "structure", "required": ["AvailabilityZone"], "members": {
                "AvailabilityZone": {"shape": "AvailabilityZoneName"},
                "Size": {"shape": "Integer"},
                "VolumeType": {"shape": "VolumeType"},
                "ClientToken": {"shape": "String", "idempotencyToken": true},
                "TagSpecifications": {"shape": "TagList", "locationName": "TagSpecification"}}},
            "AvailabilityZoneName": {"type": "string", "min": 1, "max": 64},
            "DeleteVolumeRequest": {"type": "structure", "required": ["VolumeId"], "members": {
                "VolumeId": {"shape": "String"}, "DryRun": {"shape": "Boolean", "locationName": "dryRun"}}},
            "VolumeType": {"type": "string", "enum": ["standard", "io1", "io2", "gp2", "sc1", "st1", "gp3"]},
            "VolumeState": {"type": "string", "enum": ["creating", "available", "in-use", "deleting", "deleted", "error"]},
            "String": {"type": "string"},
            "Integer": {"type": "integer"},
            "Boolean": {"type": "boolean"},
            "DateTime": {"type": "timestamp"}
        }
    });
    ServiceModel::from_json(doc.to_string().as_bytes()).unwrap()
}

fn kinds(model: &ServiceModel, op: &str, params: Value) -> Vec<(String, ParamErrorKind)> {
    let op = model.operation(op).unwrap();
    validate(model, op, &params)
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.path, e.kind))
        .collect()
}

#[test]
fn valid_params_pass() {
    let m = ec2();
    let op = m.operation("DescribeVolumes").unwrap();
    let p = json!({"Filters": [{"Name": "status", "Values": ["available"]}], "MaxResults": 5});
    assert_eq!(validate(&m, op, &p), Ok(()));
    assert_eq!(validate(&m, op, &Value::Null), Ok(()));
}

#[test]
fn unknown_member_has_close_matches() {
    let m = ec2();
    let errs = kinds(
        &m,
        "DescribeVolumes",
        json!({"Filter": [], "VolumeId": ["v"]}),
    );
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!(errs[0].0, "Filter");
    match &errs[0].1 {
        ParamErrorKind::UnknownMember { suggestions } => assert_eq!(suggestions[0], "Filters"),
        k => panic!("{k:?}"),
    }
    // Nested: the path names the list element.
    let errs = kinds(
        &m,
        "DescribeVolumes",
        json!({"Filters": [{"Name": "a", "Value": ["x"]}]}),
    );
    assert_eq!(errs[0].0, "Filters[0].Value");
    assert!(
        matches!(&errs[0].1, ParamErrorKind::UnknownMember { suggestions } if suggestions == &["Values"])
    );
    // Case mistakes are suggested first.
    let errs = kinds(&m, "DescribeVolumes", json!({"maxresults": 5}));
    assert!(
        matches!(&errs[0].1, ParamErrorKind::UnknownMember { suggestions } if suggestions[0] == "MaxResults")
    );
    let text = validate(
        &m,
        m.operation("DescribeVolumes").unwrap(),
        &json!({"Filter": []}),
    )
    .unwrap_err()[0]
        .to_string();
    assert_eq!(text, "Filter: unknown parameter (did you mean Filters?)");
}

#[test]
fn missing_required_wrong_type_enum_and_range() {
    let m = ec2();
    let errs = kinds(
        &m,
        "DescribeVolumes",
        json!({"Filters": [{"Values": "available"}]}),
    );
    assert_eq!(
        errs,
        vec![
            (
                "Filters[0].Values".to_string(),
                ParamErrorKind::WrongType {
                    expected: "list",
                    got: "string"
                }
            ),
            (
                "Filters[0].Name".to_string(),
                ParamErrorKind::MissingRequired
            ),
        ]
    );
    let errs = kinds(
        &m,
        "CreateVolume",
        json!({"VolumeType": "gp4", "Size": "10"}),
    );
    assert!(
        errs.contains(&("AvailabilityZone".into(), ParamErrorKind::MissingRequired)),
        "{errs:?}"
    );
    assert!(errs.contains(&(
        "Size".into(),
        ParamErrorKind::WrongType {
            expected: "integer",
            got: "string"
        }
    )));
    assert!(errs.iter().any(|(p, k)| p == "VolumeType"
        && matches!(k, ParamErrorKind::NotInEnum { value, allowed } if value == "gp4" && allowed.contains(&"gp3".to_string()))));
    // The idempotency token is not required of the caller.
    assert!(!errs.iter().any(|(p, _)| p == "ClientToken"));

    let errs = kinds(&m, "DescribeVolumes", json!({"MaxResults": 2}));
    assert_eq!(
        errs,
        vec![(
            "MaxResults".into(),
            ParamErrorKind::BelowMin {
                what: "value",
                min: 5.0,
                actual: 2.0
            }
        )]
    );
    let errs = kinds(&m, "DescribeVolumes", json!({"MaxResults": 5000}));
    assert!(matches!(errs[0].1, ParamErrorKind::AboveMax { max, .. } if max == 1000.0));
    let errs = kinds(&m, "CreateVolume", json!({"AvailabilityZone": ""}));
    assert_eq!(
        errs,
        vec![(
            "AvailabilityZone".into(),
            ParamErrorKind::BelowMin {
                what: "length",
                min: 1.0,
                actual: 0.0
            }
        )]
    );
    let errs = kinds(
        &m,
        "CreateVolume",
        json!({"AvailabilityZone": "x".repeat(65)}),
    );
    assert!(matches!(
        errs[0].1,
        ParamErrorKind::AboveMax { what: "length", .. }
    ));
    let errs = kinds(
        &m,
        "DescribeVolumes",
        json!({"DryRun": "yes", "MaxResults": 5.5}),
    );
    assert_eq!(errs.len(), 2);
    let errs = kinds(&m, "DescribeVolumes", json!([1]));
    assert_eq!(errs[0].0, "");
}

#[test]
fn unknown_operation_has_close_matches() {
    let m = ec2();
    let err = m.operation("DescribeVolume").unwrap_err();
    assert_eq!(err.suggestions[0], "DescribeVolumes");
    assert!(
        err.to_string().contains("did you mean DescribeVolumes"),
        "{err}"
    );
    assert_eq!(m.protocol().unwrap(), Protocol::Ec2);
    assert_eq!(m.metadata().api_version.as_deref(), Some("2016-11-15"));
    assert_eq!(m.operation_names().count(), 4);
}

#[test]
fn ec2_request_and_response() {
    let m = ec2();
    let op = m.operation("DescribeVolumes").unwrap();
    let req = serialize(
        &m,
        op,
        &json!({"Filters": [{"Name": "tag:Team", "Values": ["a b", "c"]}], "MaxResults": 5, "DryRun": false}),
    )
    .unwrap();
    assert_eq!(req.method, "POST");
    assert_eq!(req.path_and_query, "/");
    assert_eq!(
        String::from_utf8(req.body).unwrap(),
        "Action=DescribeVolumes&Version=2016-11-15&Filter.1.Name=tag%3ATeam&Filter.1.Value.1=a%20b\
         &Filter.1.Value.2=c&DryRun=false&MaxResults=5"
    );
    let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeVolumesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>1b2c</requestId>
    <volumeSet>
        <item>
            <volumeId>vol-1</volumeId><size>8</size><status>available</status>
            <createTime>2024-01-02T03:04:05.678Z</createTime><encrypted>false</encrypted>
            <tagSet><item><key>Team</key><value>a &amp; b</value></item></tagSet>
        </item>
        <item><volumeId>vol-2</volumeId><tagSet/></item>
    </volumeSet>
    <nextToken>tok</nextToken>
</DescribeVolumesResponse>"#;
    let out = parse(
        &m,
        op,
        &HttpResponse {
            status: 200,
            headers: vec![],
            body: body.into(),
        },
    )
    .unwrap();
    assert_eq!(
        out,
        json!({"Volumes": [
            {"VolumeId": "vol-1", "Size": 8, "State": "available", "CreateTime": "2024-01-02T03:04:05.678Z",
             "Encrypted": false, "Tags": [{"Key": "Team", "Value": "a & b"}]},
            {"VolumeId": "vol-2", "Tags": []}],
          "NextToken": "tok"})
    );
    let err_body = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>InvalidVolume.NotFound</Code><Message>The volume 'vol-9' does not exist.</Message></Error></Errors><RequestID>req-9</RequestID></Response>"#;
    let err = parse(
        &m,
        op,
        &HttpResponse {
            status: 400,
            headers: vec![],
            body: err_body.into(),
        },
    )
    .unwrap_err();
    assert_eq!(err.code, "InvalidVolume.NotFound");
    assert_eq!(err.message, "The volume 'vol-9' does not exist.");
    assert_eq!(err.status, 400);
    assert_eq!(err.request_id.as_deref(), Some("req-9"));
    let err = parse(
        &m,
        op,
        &HttpResponse {
            status: 503,
            headers: vec![],
            body: vec![],
        },
    )
    .unwrap_err();
    assert_eq!((err.code.as_str(), err.status), ("503", 503));
    let err = parse(
        &m,
        op,
        &HttpResponse {
            status: 200,
            headers: vec![],
            body: b"<oops".to_vec(),
        },
    )
    .unwrap_err();
    assert_eq!(err.code, "ResponseParseError");
}

#[test]
fn idempotency_token_is_filled_when_absent() {
    let m = ec2();
    let op = m.operation("CreateVolume").unwrap();
    let req = serialize(&m, op, &json!({"AvailabilityZone": "us-east-1a"})).unwrap();
    let body = String::from_utf8(req.body).unwrap();
    let token = body
        .split("ClientToken=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert!(
        uuid::Uuid::parse_str(token).is_ok_and(|u| u.get_version_num() == 4),
        "{body}"
    );
    let req = serialize(
        &m,
        op,
        &json!({"AvailabilityZone": "us-east-1a", "ClientToken": "mine"}),
    )
    .unwrap();
    assert!(
        String::from_utf8(req.body)
            .unwrap()
            .contains("ClientToken=mine")
    );
}

fn organizations() -> ServiceModel {
    let doc = json!({
        "metadata": {"apiVersion": "2016-11-28", "endpointPrefix": "organizations", "jsonVersion": "1.1",
                     "protocol": "json", "protocols": ["json"], "serviceId": "Organizations",
                     "targetPrefix": "AWSOrganizationsV20161128", "globalEndpoint": "organizations.us-east-1.amazonaws.com"},
        "operations": {
            "ListAccounts": {"name": "ListAccounts", "http": {"method": "POST", "requestUri": "/"},
                "input": {"shape": "ListAccountsRequest"}, "output": {"shape": "ListAccountsResponse"},
                "errors": [{"shape": "AccessDeniedException"}]}
        },
        "shapes": {
            "ListAccountsRequest": {"type": "structure", "members": {
                "NextToken": {"shape": "String"}, "MaxResults": {"shape": "Integer"}}},
            "ListAccountsResponse": {"type": "structure", "members": {
                "Accounts": {"shape": "Accounts"}, "NextToken": {"shape": "String"}}},
            "Accounts": {"type": "list", "member": {"shape": "Account"}},
            "Account": {"type": "structure", "members": {
                "Id": {"shape": "String"}, "Name": {"shape": "String"},
                "JoinedTimestamp": {"shape": "Timestamp"}}},
            "AccessDeniedException": {"type": "structure", "members": {"Message": {"shape": "String"}},
                "exception": true},
            "String": {"type": "string"}, "Integer": {"type": "integer"}, "Timestamp": {"type": "timestamp"}
        }
    });
    ServiceModel::from_json(doc.to_string().as_bytes()).unwrap()
}

#[test]
fn json_request_and_response() {
    let m = organizations();
    let op = m.operation("ListAccounts").unwrap();
    let req = serialize(&m, op, &json!({"MaxResults": 20})).unwrap();
    assert_eq!(
        req.header("X-Amz-Target"),
        Some("AWSOrganizationsV20161128.ListAccounts")
    );
    assert_eq!(
        req.header("content-type"),
        Some("application/x-amz-json-1.1")
    );
    assert_eq!(req.body, br#"{"MaxResults":20}"#);
    let body = r#"{"Accounts":[{"Id":"111111111111","Name":"a","JoinedTimestamp":1.7e9}],"NextToken":"n"}"#;
    let resp = HttpResponse {
        status: 200,
        headers: vec![("x-amzn-RequestId".into(), "r1".into())],
        body: body.into(),
    };
    let out = parse(&m, op, &resp).unwrap();
    assert_eq!(
        out,
        json!({"Accounts": [{"Id": "111111111111", "Name": "a", "JoinedTimestamp": "2023-11-14T22:13:20Z"}], "NextToken": "n"})
    );
    let resp = HttpResponse {
        status: 400,
        headers: vec![("x-amzn-RequestId".into(), "r2".into())],
        body: br#"{"__type":"com.amazonaws.organizations#AccessDeniedException","Message":"nope"}"#
            .to_vec(),
    };
    let err = parse(&m, op, &resp).unwrap_err();
    assert_eq!(err.code, "AccessDeniedException");
    assert_eq!(err.message, "nope");
    assert_eq!(err.request_id.as_deref(), Some("r2"));
    assert_eq!(err.data, json!({"Message": "nope"}));
    assert_eq!(
        err.to_string(),
        "AccessDeniedException: nope (HTTP 400, request id r2)"
    );
}

fn s3() -> ServiceModel {
    let ns = json!({"uri": "http://s3.amazonaws.com/doc/2006-03-01/"});
    let doc = json!({
        "metadata": {"apiVersion": "2006-03-01", "endpointPrefix": "s3", "protocol": "rest-xml",
                     "protocols": ["rest-xml"], "serviceId": "S3", "signatureVersion": "s3"},
        "operations": {
            "PutObject": {"name": "PutObject", "http": {"method": "PUT", "requestUri": "/{Bucket}/{Key+}"},
                "input": {"shape": "PutObjectRequest"}, "output": {"shape": "PutObjectOutput"}},
            "GetObject": {"name": "GetObject", "http": {"method": "GET", "requestUri": "/{Bucket}/{Key+}"},
                "input": {"shape": "GetObjectRequest"}, "output": {"shape": "GetObjectOutput"}},
            "ListObjectsV2": {"name": "ListObjectsV2", "http": {"method": "GET", "requestUri": "/{Bucket}?list-type=2"},
                "input": {"shape": "ListObjectsV2Request"}, "output": {"shape": "ListObjectsV2Output"}},
            "GetBucketLocation": {"name": "GetBucketLocation", "http": {"method": "GET", "requestUri": "/{Bucket}?location"},
                "input": {"shape": "GetObjectRequest"}, "output": {"shape": "GetBucketLocationOutput"}},
            "PutBucketTagging": {"name": "PutBucketTagging", "http": {"method": "PUT", "requestUri": "/{Bucket}?tagging"},
                "input": {"shape": "PutBucketTaggingRequest"}}
        },
        "shapes": {
            "PutObjectRequest": {"type": "structure", "required": ["Bucket", "Key"], "payload": "Body", "members": {
                "Body": {"shape": "Body", "streaming": true},
                "Bucket": {"shape": "String", "location": "uri", "locationName": "Bucket"},
                "Key": {"shape": "String", "location": "uri", "locationName": "Key"},
                "ContentType": {"shape": "String", "location": "header", "locationName": "Content-Type"},
                "Metadata": {"shape": "Metadata", "location": "headers", "locationName": "x-amz-meta-"}}},
            "PutObjectOutput": {"type": "structure", "members": {
                "ETag": {"shape": "String", "location": "header", "locationName": "ETag"}}},
            "GetObjectRequest": {"type": "structure", "required": ["Bucket", "Key"], "members": {
                "Bucket": {"shape": "String", "location": "uri", "locationName": "Bucket"},
                "Key": {"shape": "String", "location": "uri", "locationName": "Key"},
                "IfModifiedSince": {"shape": "Timestamp", "location": "header", "locationName": "If-Modified-Since"}}},
            "GetObjectOutput": {"type": "structure", "payload": "Body", "members": {
                "Body": {"shape": "Body", "streaming": true},
                "ContentLength": {"shape": "Long", "location": "header", "locationName": "Content-Length"},
                "LastModified": {"shape": "Timestamp", "location": "header", "locationName": "Last-Modified"},
                "Metadata": {"shape": "Metadata", "location": "headers", "locationName": "x-amz-meta-"}}},
            "GetBucketLocationOutput": {"type": "structure", "members": {
                "LocationConstraint": {"shape": "String"}}},
            "ListObjectsV2Request": {"type": "structure", "required": ["Bucket"], "members": {
                "Bucket": {"shape": "String", "location": "uri", "locationName": "Bucket"},
                "Prefix": {"shape": "String", "location": "querystring", "locationName": "prefix"},
                "ContinuationToken": {"shape": "String", "location": "querystring", "locationName": "continuation-token"}}},
            "ListObjectsV2Output": {"type": "structure", "members": {
                "IsTruncated": {"shape": "Boolean"},
                "Contents": {"shape": "ObjectList", "flattened": true},
                "NextContinuationToken": {"shape": "String"},
                "KeyCount": {"shape": "Integer"}}},
            "ObjectList": {"type": "list", "member": {"shape": "Object"}, "flattened": true},
            "Object": {"type": "structure", "members": {
                "Key": {"shape": "String"}, "LastModified": {"shape": "Timestamp"}, "Size": {"shape": "Long"}}},
            "PutBucketTaggingRequest": {"type": "structure", "required": ["Bucket", "Tagging"], "payload": "Tagging", "members": {
                "Bucket": {"shape": "String", "location": "uri", "locationName": "Bucket"},
                "Tagging": {"shape": "Tagging", "locationName": "Tagging", "xmlNamespace": ns}}},
            "Tagging": {"type": "structure", "required": ["TagSet"], "members": {"TagSet": {"shape": "TagSet"}}},
            "TagSet": {"type": "list", "member": {"shape": "Tag", "locationName": "Tag"}},
            "Tag": {"type": "structure", "members": {"Key": {"shape": "String"}, "Value": {"shape": "String"}}},
            "Metadata": {"type": "map", "key": {"shape": "String"}, "value": {"shape": "String"}},
            "Body": {"type": "blob", "streaming": true},
            "String": {"type": "string"}, "Long": {"type": "long"}, "Integer": {"type": "integer"},
            "Boolean": {"type": "boolean"}, "Timestamp": {"type": "timestamp"}
        }
    });
    ServiceModel::from_json(doc.to_string().as_bytes()).unwrap()
}

#[test]
fn rest_xml_requests() {
    let m = s3();
    let req = serialize(
        &m,
        m.operation("PutObject").unwrap(),
        &json!({"Bucket": "b", "Key": "dir/a b+c.txt", "Body": "hello", "ContentType": "text/plain",
                "Metadata": {"team": "x"}}),
    )
    .unwrap();
    assert_eq!(req.method, "PUT");
    assert_eq!(req.path_and_query, "/b/dir/a%20b%2Bc.txt");
    assert_eq!(req.body, b"hello");
    assert_eq!(req.header("content-type"), Some("text/plain"));
    assert_eq!(req.header("x-amz-meta-team"), Some("x"));

    let req = serialize(
        &m,
        m.operation("GetObject").unwrap(),
        &json!({"Bucket": "b", "Key": "k", "IfModifiedSince": "2014-04-29T18:30:38Z"}),
    )
    .unwrap();
    assert_eq!(
        req.header("If-Modified-Since"),
        Some("Tue, 29 Apr 2014 18:30:38 GMT")
    );
    assert!(req.body.is_empty());

    let req = serialize(
        &m,
        m.operation("ListObjectsV2").unwrap(),
        &json!({"Bucket": "b", "Prefix": "logs/", "ContinuationToken": "a=b"}),
    )
    .unwrap();
    assert_eq!(
        req.path_and_query,
        "/b?list-type=2&prefix=logs%2F&continuation-token=a%3Db"
    );

    let req = serialize(
        &m,
        m.operation("PutBucketTagging").unwrap(),
        &json!({"Bucket": "b", "Tagging": {"TagSet": [{"Key": "k", "Value": "v<1>"}]}}),
    )
    .unwrap();
    assert_eq!(req.path_and_query, "/b?tagging");
    assert_eq!(req.header("Content-Type"), Some("application/xml"));
    assert_eq!(
        String::from_utf8(req.body).unwrap(),
        r#"<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet><Tag><Key>k</Key><Value>v&lt;1&gt;</Value></Tag></TagSet></Tagging>"#
    );
}

#[test]
fn rest_xml_responses() {
    let m = s3();
    let resp = HttpResponse {
        status: 200,
        headers: vec![
            ("Content-Length".into(), "3".into()),
            (
                "Last-Modified".into(),
                "Tue, 29 Apr 2014 18:30:38 GMT".into(),
            ),
            ("x-amz-meta-Team".into(), "x".into()),
            ("x-amz-request-id".into(), "rid".into()),
        ],
        body: vec![0, 1, 255],
    };
    let out = parse(&m, m.operation("GetObject").unwrap(), &resp).unwrap();
    assert_eq!(
        out,
        json!({"Body": "AAH/", "ContentLength": 3, "LastModified": "2014-04-29T18:30:38Z", "Metadata": {"Team": "x"}})
    );
    let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><IsTruncated>true</IsTruncated>
<Contents><Key>a</Key><LastModified>2024-05-01T00:00:00.000Z</LastModified><Size>1</Size></Contents>
<Contents><Key>b</Key><Size>2</Size></Contents>
<NextContinuationToken>n</NextContinuationToken><KeyCount>2</KeyCount></ListBucketResult>"#;
    let out = parse(
        &m,
        m.operation("ListObjectsV2").unwrap(),
        &HttpResponse {
            status: 200,
            headers: vec![],
            body: body.into(),
        },
    )
    .unwrap();
    assert_eq!(
        out,
        json!({"IsTruncated": true, "KeyCount": 2, "NextContinuationToken": "n",
               "Contents": [{"Key": "a", "LastModified": "2024-05-01T00:00:00Z", "Size": 1}, {"Key": "b", "Size": 2}]})
    );
    let err = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>k</Key><RequestId>R1</RequestId><HostId>H</HostId></Error>"#;
    let e = parse(
        &m,
        m.operation("GetObject").unwrap(),
        &HttpResponse {
            status: 404,
            headers: vec![],
            body: err.into(),
        },
    )
    .unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.status, e.request_id.as_deref()),
        ("NoSuchKey", 404, Some("R1"))
    );
    let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">eu-west-1</LocationConstraint>"#;
    let out = parse(
        &m,
        m.operation("GetBucketLocation").unwrap(),
        &HttpResponse {
            status: 200,
            headers: vec![],
            body: body.into(),
        },
    )
    .unwrap();
    assert_eq!(out, json!({"LocationConstraint": "eu-west-1"}));
    // S3 reports some failures with status 200 and an <Error> document.
    let e = parse(
        &m,
        m.operation("ListObjectsV2").unwrap(),
        &HttpResponse {
            status: 200,
            headers: vec![],
            body: err.into(),
        },
    )
    .unwrap_err();
    assert_eq!((e.code.as_str(), e.status), ("NoSuchKey", 200));
    // HEAD-style errors have no body: the status is the code.
    let e = parse(
        &m,
        m.operation("GetObject").unwrap(),
        &HttpResponse {
            status: 404,
            headers: vec![("x-amz-request-id".into(), "R2".into())],
            body: vec![],
        },
    )
    .unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.message.as_str(), e.request_id.as_deref()),
        ("404", "Not Found", Some("R2"))
    );
}

#[test]
fn serialize_reports_wrong_types_with_paths() {
    let m = ec2();
    let err = serialize(
        &m,
        m.operation("DescribeVolumes").unwrap(),
        &json!({"Filters": [{"Name": "a", "Values": [1]}]}),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Filters[0].Values[0]: expected string, got number"
    );
    let m = s3();
    let err = serialize(
        &m,
        m.operation("GetObject").unwrap(),
        &json!({"Bucket": "b"}),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "Key: required URI label has no value");
}

#[test]
fn unions_and_map_keys() {
    let doc = json!({
        "metadata": {"protocol": "rest-json", "apiVersion": "2020-01-01"},
        "operations": {"Put": {"name": "Put", "http": {"method": "POST", "requestUri": "/"},
                       "input": {"shape": "In"}}},
        "shapes": {
            "In": {"type": "structure", "members": {"Choice": {"shape": "Choice"}, "Labels": {"shape": "Labels"}}},
            "Choice": {"type": "structure", "union": true, "members": {"A": {"shape": "S"}, "B": {"shape": "S"}}},
            "Labels": {"type": "map", "key": {"shape": "Key"}, "value": {"shape": "S"}},
            "Key": {"type": "string", "min": 3, "enum": ["alpha"]},
            "S": {"type": "string"}
        }
    });
    let m = ServiceModel::from_json(doc.to_string().as_bytes()).unwrap();
    let op = m.operation("Put").unwrap();
    assert_eq!(
        validate(
            &m,
            op,
            &json!({"Choice": {"A": "x"}, "Labels": {"beta": "y"}})
        ),
        Ok(())
    );
    let errs = validate(
        &m,
        op,
        &json!({"Choice": {"A": "x", "B": "y"}, "Labels": {"ab": "y"}}),
    )
    .unwrap_err();
    let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "Choice: exactly one of A, B must be set, 2 are",
            "Labels.ab: length is 2, below the minimum of 3"
        ]
    );
    let errs = validate(&m, op, &json!({"Choice": {}})).unwrap_err();
    assert!(matches!(
        errs[0].kind,
        ParamErrorKind::UnionMembers { set: 0, .. }
    ));
}

#[test]
fn truncated_or_garbled_responses_never_panic() {
    let ec2 = ec2();
    let orgs = organizations();
    let s3 = s3();
    let cases: Vec<(&ServiceModel, &str, &str)> = vec![
        (
            &ec2,
            "DescribeVolumes",
            "<DescribeVolumesResponse><volumeSet><item><volumeId>v</volumeId><createTime>2024-01-02T03:04:05Z</createTime><size>8</size><tagSet><item><key>k</key></item></tagSet></item></volumeSet></DescribeVolumesResponse>",
        ),
        (
            &orgs,
            "ListAccounts",
            r#"{"Accounts":[{"Id":"1","JoinedTimestamp":1.5e9}],"NextToken":"n"}"#,
        ),
        (
            &s3,
            "ListObjectsV2",
            "<ListBucketResult><Contents><Key>a</Key><Size>1</Size><LastModified>2024-01-01T00:00:00Z</LastModified></Contents></ListBucketResult>",
        ),
        (&s3, "GetObject", "<Error><Code>NoSuchKey</Code></Error>"),
    ];
    for (model, op, body) in cases {
        let op = model.operation(op).unwrap();
        for cut in 0..body.len() {
            for status in [200, 400, 503] {
                let resp = HttpResponse {
                    status,
                    headers: vec![],
                    body: body.as_bytes()[..cut].to_vec(),
                };
                let _ = parse(model, op, &resp);
                let mut garbled = body.as_bytes().to_vec();
                garbled[cut] = garbled[cut].wrapping_add(1);
                let resp = HttpResponse {
                    status,
                    headers: vec![],
                    body: garbled,
                };
                let _ = parse(model, op, &resp);
            }
        }
    }
}

#[test]
fn loaded_models_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<ServiceModel>();
    shareable::<orgop_awswire::Paginators>();
    shareable::<orgop_awswire::Waiters>();
    shareable::<orgop_awswire::AwsError>();
    shareable::<orgop_awswire::HttpRequest>();
}
